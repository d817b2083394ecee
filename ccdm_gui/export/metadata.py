"""What an export records about itself: the run's spec, the app version, the view and
the per-step metrics, so a frame folder or a video can be traced back to its run."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math

from .. import __version__
from ..core import render
from ..core.spec import Comparison


def _num(x) -> float | None:
    x = float(x)
    # JSON has no NaN; a constant image's undefined correlation becomes null.
    return None if math.isnan(x) or math.isinf(x) else x


def run_record(comp: Comparison) -> dict:
    steps = [
        {
            "step": i,
            "t": _num(comp.cnn.t[i]),
            "patch_size": int(comp.machine.patch_size[i]),
            "correlation": _num(comp.correlation[i]),
        }
        for i in range(len(comp.cnn.t))
    ]
    return {"spec": dataclasses.asdict(comp.spec), "title": render.title(comp), "steps": steps}


def export_record(comps: list[Comparison], view: dict, **extra) -> dict:
    """The sidecar / container comment: one entry in "runs" per comparison (several
    for a grid video)."""
    return {
        "app": "ccdm-gui",
        "version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "view": view,
        **extra,
        "runs": [run_record(c) for c in comps],
    }


def to_json(record: dict, indent: int | None = None) -> str:
    return json.dumps(record, indent=indent, separators=None if indent else (",", ":"))
