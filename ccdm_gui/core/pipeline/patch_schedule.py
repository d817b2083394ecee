"""The receptive field P of each step: fixed, the model's calibrated P(t), or the
published default."""

from __future__ import annotations

import numpy as np

from ..checkpoint import ModelInfo
from ..machine_registry import machine as machine_entry
from ..schedule import Schedule
from ..spec import RunSpec

# The paper's calibrated P(t) for its MNIST ResNet with zero padding (docs/design.md,
# Calibration of P(t)), index i holding t = (i + 1) / 20. Used for models that carry no
# calibration of their own: it is the closest published schedule to the shipped default model.
DEFAULT_SCHEDULE = (3, 3, 5, 5, 5, 7, 7, 7, 9, 9, 11, 11, 11, 11, 13, 15, 15, 15, 15, 15)


def _nearest_index(t: float, length: int) -> int:
    # Entry k of a calibrated schedule of length L belongs to t = (k + 1) / L.
    grid = (np.arange(length) + 1.0) / length
    return int(np.argmin(np.abs(grid - float(t))))


def schedule_for(info: ModelInfo, machine: str) -> tuple[list[int], bool]:
    """The model's calibrated P(t) for ``machine`` (t ascending), or the default;
    the flag says whether it is the model's own."""
    key = machine_entry(machine).calibration_key
    own = (info.calibrated_p or {}).get(key) if key is not None else None
    if own:
        return [int(p) for p in own], True
    return list(DEFAULT_SCHEDULE), False


def patch_schedule(spec: RunSpec, info: ModelInfo, schedule: Schedule) -> np.ndarray:
    """P for each step of ``spec``'s grid on the model's noise ``schedule`` (index 0 =
    the noisiest step)."""
    grid = schedule.times(spec.steps)
    if not machine_entry(spec.machine).has_patch_size:
        # A whole-image machine has no P; the image size is only reported.
        return np.full(len(grid), int(info.image_size), dtype=np.int64)
    if spec.patch_size is not None:
        return np.full(len(grid), int(spec.patch_size), dtype=np.int64)
    sched, _ = schedule_for(info, spec.machine)
    return np.array([sched[_nearest_index(t, len(sched))] for t in grid], dtype=np.int64)
