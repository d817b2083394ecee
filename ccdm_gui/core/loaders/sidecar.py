"""Calibrated P(t) for models whose files ccdm-gui does not write into: a small JSON
beside them (``<folder>/ccdm.json`` for a folder, ``<file>.ccdm.json`` for a file)."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path
from ..checkpoint import CheckpointError

FORMAT = "ccdm-gui-sidecar/1"


def sidecar_path(path: Path) -> Path:
    return path / "ccdm.json" if path.is_dir() else path.with_name(path.name + ".ccdm.json")


def read(path: Path) -> dict[str, list[int]] | None:
    """The calibrated P(t) kept beside ``path``, or None when there is none."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        d = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{side}: not readable JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise CheckpointError(f"{side}: not a ccdm-gui calibration file (format {FORMAT})")
    cal = d.get("calibrated_p", {})
    ok = isinstance(cal, dict) and all(
        isinstance(v, list) and all(isinstance(p, int) and p % 2 == 1 for p in v)
        for v in cal.values()
    )
    if not ok:
        raise CheckpointError(f"{side}: calibrated_p must map machines to lists of odd ints")
    return {str(k): [int(p) for p in v] for k, v in cal.items()}


def write(path: Path, calibrated_p: dict[str, list[int]]) -> Path:
    side = sidecar_path(path)
    text = json.dumps({"format": FORMAT, "calibrated_p": calibrated_p}, indent=1) + "\n"
    with atomic_path(side) as tmp:
        tmp.write_text(text)
    return side
