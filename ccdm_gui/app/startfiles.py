"""Which model and dataset the window opens with, and what to tell the user when the one
asked for (on the command line, or remembered from last time) cannot be opened.

Paths are made absolute here, so a file opened as ``models/x.safetensors`` from one
folder is found again by a window started from another.
"""

from __future__ import annotations

import os

from ..core import resources, validate
from . import settings as st


def absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


def default_for(kind: str) -> str:
    r = resources
    return str(r.default_model_path() if kind == "model" else r.default_dataset_path())


def fallback_note(kind: str, why: str) -> str:
    return f"{why[0].upper()}{why[1:]}; opened the default {kind} instead."


def opening_files(options: dict, settings) -> tuple[str, str, list[str]]:
    """(model, dataset, notes): each path from ``options``, else the settings, else the
    default; one that does not exist is replaced by the default, with a note saying so."""
    found = {}
    notes = []
    for kind, check in (("model", validate.model_file), ("dataset", validate.dataset_path)):
        given = options.get(kind)
        path = given if given is not None else st.get(settings, f"last/{kind}", None, str)
        if not path:
            found[kind] = default_for(kind)
            continue
        path = absolute(path)
        try:
            check(path)
        except validate.ArgumentError as e:
            why = str(e) if given is not None else f"the last {kind}, {path}, is gone"
            notes.append(fallback_note(kind, why))
            path = default_for(kind)
        found[kind] = path
    return found["model"], found["dataset"], notes
