"""Remembered window state and choices (QSettings).

``CCDM_GUI_SETTINGS`` names an INI file to use instead of the user's settings, so
tests and the screenshot bench never read or overwrite a real user's choices.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ENV_VAR = "CCDM_GUI_SETTINGS"
MAX_RECENT = 8


def open_settings() -> QSettings:
    path = os.environ.get(ENV_VAR)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("ccdm-gui", "ccdm-gui")


def get(s: QSettings, key: str, default, kind=None):
    """QSettings returns strings from INI files; coerce to the default's type."""
    v = s.value(key, default)
    kind = kind or (type(default) if default is not None else None)
    if v is None or kind is None:
        return v
    try:
        if kind is bool:
            return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
        if kind is list:
            if isinstance(v, str):
                return [v] if v else []
            return list(v)
        return kind(v)
    except (TypeError, ValueError):
        return default


def recent(s: QSettings, kind: str) -> list[str]:
    return [p for p in get(s, f"recent/{kind}", [], list) if p]


def push_recent(s: QSettings, kind: str, path: str) -> list[str]:
    items = [path] + [p for p in recent(s, kind) if p != path]
    items = items[:MAX_RECENT]
    s.setValue(f"recent/{kind}", items)
    return items


def recent_labels(paths: list[str]) -> list[str]:
    """Menu labels for ``paths``: the file name, followed by as many of its folders as
    it takes to tell apart files of the same name ("model.pt — runs/a")."""
    parts = [Path(p).parts for p in paths]
    labels = []
    for i, p in enumerate(paths):
        name = Path(p).name or p
        clash = [q for j, q in enumerate(parts) if j != i and q and q[-1:] == parts[i][-1:]]
        depth = 1
        own = parts[i]
        while clash and depth < len(own):
            depth += 1
            clash = [q for q in clash if q[-depth:] == own[-depth:]]
        if depth > 1:
            labels.append(f"{name} \u2014 {Path(*own[-depth:-1])}")
        else:
            labels.append(name)
    return labels


CHOICE_KEYS = (
    "model",
    "dataset",
    "subset",
    "seed",
    "steps",
    "device",
    "machine",
    "boundary",
    "patch_size",
    "show",
    "prov_mode",
    "diff",
    "fps",
    "loop",
)


def forget_choices(s: QSettings) -> None:
    """Drop the remembered run and view choices (window geometry and recent files stay)."""
    for key in CHOICE_KEYS:
        s.remove(f"last/{key}")
    s.sync()
