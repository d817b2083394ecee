"""Finished trajectories, kept by what each depends on."""

from __future__ import annotations

from .. import loaders
from ..spec import CNNTrajectory, MachineTrajectory, RunSpec
from .loading import model_info
from .lru import LRU, change_stamp


class TrajectoryCache:
    """Finished trajectories by spec. The CNN part is keyed only by what it depends on,
    so changing machine, P, boundary or dataset reuses it. File modification times are
    part of the key: a retrained or recalibrated model never serves stale frames."""

    def __init__(self, max_items: int = 32):
        self._cnn = LRU(max_items)
        self._machine = LRU(max_items)

    @staticmethod
    def _cnn_key(spec: RunSpec) -> tuple:
        key = spec.cnn_key()
        try:
            conditional = model_info(spec.model).num_classes > 0
        except (OSError, ValueError):
            conditional = True  # unreadable: keep the label in the key; the run will report it
        if not conditional:
            # An unconditional CNN ignores the label, so picking a class for the machine's
            # training set must not recompute it.
            key = spec.with_(label=None).cnn_key()
        return (key, loaders.change_stamp(spec.model))

    @staticmethod
    def _machine_key(spec: RunSpec) -> tuple:
        return (spec.machine_key(), loaders.change_stamp(spec.model), change_stamp(spec.dataset))

    def get_cnn(self, spec: RunSpec) -> CNNTrajectory | None:
        return self._cnn.get(self._cnn_key(spec))

    def put_cnn(self, spec: RunSpec, traj: CNNTrajectory) -> None:
        self._cnn.put(self._cnn_key(spec), traj)

    def get_machine(self, spec: RunSpec) -> MachineTrajectory | None:
        return self._machine.get(self._machine_key(spec))

    def put_machine(self, spec: RunSpec, traj: MachineTrajectory) -> None:
        self._machine.put(self._machine_key(spec), traj)

    def clear(self) -> None:
        self._cnn.clear()
        self._machine.clear()

    def __len__(self) -> int:
        return len(self._cnn) + len(self._machine)
