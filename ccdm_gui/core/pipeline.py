"""Run a comparison: the CNN's DDIM trajectory beside a score machine's, from the same noise.

Everything here is Qt-free and may run on a worker thread: results are numpy copies,
progress goes through callbacks, and cancellation is checked between steps.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .checkpoint import LoadedModel, ModelInfo, load_checkpoint, read_info
from .datasets import Dataset, DatasetError, load_dataset
from .denoisers import CNNDenoiser, MachineDenoiser
from .machine_registry import machine as machine_entry
from .metrics import correlation
from .sampler import Cancelled, Step, initial_noise, sample
from .schedule import time_grid
from .spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec

__all__ = [
    "DEFAULT_SCHEDULE",
    "Cancelled",
    "TrainingSet",
    "TrajectoryCache",
    "assemble_comparison",
    "cnn_label",
    "load_comparison",
    "load_model",
    "load_training_images",
    "patch_schedule",
    "run_cnn",
    "run_comparison",
    "run_machine",
    "save_comparison",
]

# The paper's calibrated P(t) for its MNIST ResNet with zero padding (docs/design.md,
# Calibration of P(t)), index i holding t = (i + 1) / 20. Used for models that carry no
# calibration of their own: it is the closest published schedule to the shipped default model.
DEFAULT_SCHEDULE = (3, 3, 5, 5, 5, 7, 7, 7, 9, 9, 11, 11, 11, 11, 13, 15, 15, 15, 15, 15)


# ----------------------------------------------------------------------------- small LRU


class _LRU:
    def __init__(self, max_items: int):
        self.max_items = max_items
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._d:
                return None
            self._d.move_to_end(key)
            return self._d[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_items:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._d)


def _mtime(path: str | os.PathLike) -> int:
    """A change stamp for a file or folder (a folder changes when any file in it does)."""
    p = Path(path)
    try:
        st = p.stat().st_mtime_ns
        if p.is_dir():
            st = max([st] + [c.stat().st_mtime_ns for c in p.iterdir() if c.is_file()])
        return st
    except OSError:
        return -1


# ----------------------------------------------------------------------------- models


# Loading a model is cheap next to a run, but the GUI asks on every parameter change.
_models = _LRU(4)


_infos = _LRU(16)


def _model_info(path: str) -> ModelInfo:
    """Metadata only (no weights), cached like load_model."""
    ap = os.path.abspath(path)
    key = (ap, _mtime(ap))
    hit = _infos.get(key)
    if hit is None:
        hit = read_info(ap)
        _infos.put(key, hit)
    return hit


def load_model(path: str, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint, cached by (absolute path, modification time, device), so a
    checkpoint rewritten by training or calibration is picked up on the next call."""
    ap = os.path.abspath(path)
    key = (ap, _mtime(ap), str(device))
    hit = _models.get(key)
    if hit is None:
        hit = load_checkpoint(ap, device)
        _models.put(key, hit)
    return hit


# ----------------------------------------------------------------------------- training set


@dataclass
class TrainingSet:
    images: torch.Tensor  # [N, C, H, W] on the run's device
    indices: np.ndarray  # int64 [N]: position -> index in the full dataset file
    dataset: Dataset  # the whole file, images on the CPU

    @property
    def labels(self) -> np.ndarray | None:
        """int64 [N] class label of each image; None if the dataset has none."""
        if self.dataset.labels is None:
            return None
        return self.dataset.labels.numpy()[self.indices].astype(np.int64)


# A full MNIST at 32x32 is 245 MB, so only a couple of decoded datasets are kept.
_datasets = _LRU(2)
_training_sets = _LRU(8)


def _load_full(path: str, image_size: int, channels: int) -> Dataset:
    ap = os.path.abspath(path)
    key = (ap, _mtime(ap), image_size, channels)
    ds = _datasets.get(key)
    if ds is None:
        ds = load_dataset(ap, image_size, channels)
        _datasets.put(key, ds)
    return ds


def load_training_images(spec: RunSpec, info: ModelInfo) -> TrainingSet:
    """The first ``spec.subset`` images of the dataset or, with ``spec.label`` set, the
    first ``spec.subset`` images of that class (the class-conditional machine of the paper
    sees only its class; a subset of the class keeps it as large as an unconditional
    machine's), prepared to the model's image size and channels."""
    ap = os.path.abspath(spec.dataset)
    key = (ap, _mtime(ap), info.image_size, info.channels, spec.subset, spec.label, spec.device)
    hit = _training_sets.get(key)
    if hit is not None:
        return hit
    ds = _load_full(spec.dataset, info.image_size, info.channels)
    want = (info.channels, info.image_size, info.image_size)
    if tuple(ds.images.shape[1:]) != want:
        raise DatasetError(
            f"{spec.dataset}: images are {tuple(ds.images.shape[1:])} (C, H, W) but the "
            f"model needs {want}"
        )
    if spec.subset is not None and spec.subset < 1:
        raise ValueError(f"subset size must be >= 1, got {spec.subset}")
    idx = np.arange(len(ds), dtype=np.int64)
    if spec.label is not None:
        if ds.labels is None:
            raise DatasetError(f"{spec.dataset}: has no labels, cannot select class {spec.label}")
        idx = idx[(ds.labels == int(spec.label)).numpy()]
        if idx.size == 0:
            present = sorted(set(ds.labels.tolist()))
            raise DatasetError(
                f"{spec.dataset}: no image of class {spec.label} (classes present: {present})"
            )
    if spec.subset is not None:
        idx = idx[: int(spec.subset)]
    images = ds.images[torch.from_numpy(idx)].to(spec.device)
    ts = TrainingSet(images=images, indices=idx, dataset=ds)
    _training_sets.put(key, ts)
    return ts


# ----------------------------------------------------------------------------- P(t)


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


def patch_schedule(spec: RunSpec, info: ModelInfo) -> np.ndarray:
    """P for each step of ``spec``'s grid (index 0 = t = 1, the noisiest step)."""
    grid = time_grid(spec.steps)
    if not machine_entry(spec.machine).has_patch_size:
        # A whole-image machine has no P; the image size is only reported.
        return np.full(len(grid), int(info.image_size), dtype=np.int64)
    if spec.patch_size is not None:
        return np.full(len(grid), int(spec.patch_size), dtype=np.int64)
    sched, _ = schedule_for(info, spec.machine)
    return np.array([sched[_nearest_index(t, len(sched))] for t in grid], dtype=np.int64)


# ----------------------------------------------------------------------------- runs


def cnn_label(spec: RunSpec, info: ModelInfo) -> int | None:
    """The label the CNN is conditioned on; an unconditional CNN ignores the spec's label
    (the machine still restricts its training set to that class)."""
    if info.num_classes <= 0:
        return None
    if spec.label is None:
        raise ValueError(
            f"{spec.model}: the model is class-conditional ({info.num_classes} classes); "
            "choose a class label"
        )
    if not 0 <= int(spec.label) < info.num_classes:
        raise ValueError(
            f"label {spec.label} is outside the model's classes 0..{info.num_classes - 1}"
        )
    return int(spec.label)


def _noise(spec: RunSpec, info: ModelInfo) -> torch.Tensor:
    shape = (1, info.channels, info.image_size, info.image_size)
    return initial_noise(shape, spec.seed, spec.device)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).numpy().copy()


def _cnn_traj(steps: list[Step], final: torch.Tensor) -> CNNTrajectory:
    return CNNTrajectory(
        t=np.array([s.t for s in steps], dtype=np.float64),
        x_t=np.stack([_np(s.x_t[0]) for s in steps]),
        x0=np.stack([_np(s.x0[0]) for s in steps]),
        final=_np(final[0]),
    )


def run_cnn(
    spec: RunSpec,
    on_step: Callable[[int, int, CNNTrajectory], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> CNNTrajectory:
    model = load_model(spec.model, spec.device)
    den = CNNDenoiser(model.net, cnn_label(spec, model.info))
    done: list[Step] = []

    def step_cb(i: int, step: Step) -> None:
        done.append(step)
        if on_step is not None:
            on_step(i, spec.steps, _cnn_traj(done, step.x0))

    traj = sample(
        den, _noise(spec, model.info), spec.steps, on_step=step_cb, should_cancel=should_cancel
    )
    return _cnn_traj(traj.steps, traj.final)


def _machine_traj(
    steps: list[Step], final: torch.Tensor, ps: np.ndarray, training: TrainingSet
) -> MachineTrajectory:
    def prov(name: str, dtype) -> np.ndarray:
        return np.stack(
            [getattr(s.extra, name)[0].detach().cpu().numpy().astype(dtype) for s in steps]
        )

    return MachineTrajectory(
        t=np.array([s.t for s in steps], dtype=np.float64),
        patch_size=np.asarray(ps[: len(steps)], dtype=np.int64).copy(),
        x_t=np.stack([_np(s.x_t[0]) for s in steps]),
        x0=np.stack([_np(s.x0[0]) for s in steps]),
        source_index=prov("source_index", np.int64),
        source_yx=prov("source_yx", np.int64),
        weight=prov("weight", np.float32),
        entropy=prov("entropy", np.float32),
        final=_np(final[0]),
        train_indices=training.indices.copy(),
        train_labels=training.labels,
    )


def run_machine(
    spec: RunSpec,
    on_step: Callable[[int, int, MachineTrajectory], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> MachineTrajectory:
    info = load_model(spec.model, spec.device).info
    training = load_training_images(spec, info)
    ps = patch_schedule(spec, info)
    grid = time_grid(spec.steps)
    by_t = {t: int(p) for t, p in zip(grid, ps, strict=True)}
    den = MachineDenoiser(training.images, spec.machine, lambda t: by_t[t], spec.boundary)
    done: list[Step] = []

    def step_cb(i: int, step: Step) -> None:
        done.append(step)
        if on_step is not None:
            on_step(i, spec.steps, _machine_traj(done, step.x0, ps, training))

    traj = sample(den, _noise(spec, info), spec.steps, on_step=step_cb, should_cancel=should_cancel)
    return _machine_traj(traj.steps, traj.final, ps, training)


def assemble_comparison(
    spec: RunSpec, cnn: CNNTrajectory, machine: MachineTrajectory
) -> Comparison:
    """Pair two finished trajectories; correlation is taken between the two x0_hat of
    each step, each from its own trajectory."""
    if len(cnn.t) != len(machine.t):
        raise ValueError(f"trajectories differ in length: {len(cnn.t)} vs {len(machine.t)}")
    corr = np.array([correlation(a, b) for a, b in zip(cnn.x0, machine.x0, strict=True)])
    return Comparison(spec=spec, cnn=cnn, machine=machine, correlation=corr)


class TrajectoryCache:
    """Finished trajectories by spec. The CNN part is keyed only by what it depends on,
    so changing machine, P, boundary or dataset reuses it. File modification times are
    part of the key: a retrained or recalibrated model never serves stale frames."""

    def __init__(self, max_items: int = 32):
        self._cnn = _LRU(max_items)
        self._machine = _LRU(max_items)

    @staticmethod
    def _cnn_key(spec: RunSpec) -> tuple:
        key = spec.cnn_key()
        try:
            conditional = _model_info(spec.model).num_classes > 0
        except (OSError, ValueError):
            conditional = True  # unreadable: keep the label in the key; the run will report it
        if not conditional:
            # An unconditional CNN ignores the label, so picking a class for the machine's
            # training set must not recompute it.
            key = spec.with_(label=None).cnn_key()
        return (key, _mtime(spec.model))

    @staticmethod
    def _machine_key(spec: RunSpec) -> tuple:
        return (spec.machine_key(), _mtime(spec.model), _mtime(spec.dataset))

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


def run_comparison(
    spec: RunSpec,
    cache: TrajectoryCache | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timings: dict[str, float] | None = None,
) -> Comparison:
    """CNN then machine (each from the cache when possible). ``timings``, if given,
    receives the seconds spent computing each part (0 for a cache hit)."""

    def progress(stage: str):
        if on_progress is None:
            return None
        return lambda i, total, _partial: on_progress(stage, i, total)

    t0 = time.perf_counter()
    cnn = cache.get_cnn(spec) if cache is not None else None
    if cnn is None:
        cnn = run_cnn(spec, progress("cnn"), should_cancel)
        if cache is not None:
            cache.put_cnn(spec, cnn)
    elif on_progress is not None:
        on_progress("cnn", spec.steps - 1, spec.steps)
    t1 = time.perf_counter()
    machine = cache.get_machine(spec) if cache is not None else None
    if machine is None:
        machine = run_machine(spec, progress("machine"), should_cancel)
        if cache is not None:
            cache.put_machine(spec, machine)
    elif on_progress is not None:
        on_progress("machine", spec.steps - 1, spec.steps)
    t2 = time.perf_counter()
    if timings is not None:
        timings["cnn_seconds"] = t1 - t0
        timings["machine_seconds"] = t2 - t1
    return assemble_comparison(spec, cnn, machine)


# ----------------------------------------------------------------------------- files

_CNN_FIELDS = [f.name for f in dataclasses.fields(CNNTrajectory)]
_MACHINE_FIELDS = [f.name for f in dataclasses.fields(MachineTrajectory)]
# Fields a file may lack (None is not stored): their dataclass default stands in.
_MACHINE_OPTIONAL = {"train_labels"}


def spec_to_json(spec: RunSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def spec_from_json(text: str) -> RunSpec:
    d = json.loads(text)
    known = {f.name for f in dataclasses.fields(RunSpec)}
    return RunSpec(**{k: v for k, v in d.items() if k in known})


def save_comparison(comp: Comparison, path: str | os.PathLike) -> None:
    """One .npz: cnn_<field>, machine_<field>, correlation, and the spec as a JSON string."""
    arrays = {f"cnn_{k}": np.asarray(getattr(comp.cnn, k)) for k in _CNN_FIELDS}
    arrays |= {
        f"machine_{k}": np.asarray(getattr(comp.machine, k))
        for k in _MACHINE_FIELDS
        if getattr(comp.machine, k) is not None
    }
    arrays["correlation"] = np.asarray(comp.correlation, dtype=np.float64)
    arrays["spec"] = np.array(spec_to_json(comp.spec))
    arrays["format"] = np.array("ccdm-gui/comparison/1")
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def load_comparison(path: str | os.PathLike) -> Comparison:
    try:
        with np.load(str(path), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable trajectory file ({e})") from None
    missing = [
        k
        for k in ["spec", "correlation"]
        + [f"cnn_{f}" for f in _CNN_FIELDS]
        + [f"machine_{f}" for f in _MACHINE_FIELDS if f not in _MACHINE_OPTIONAL]
        if k not in data
    ]
    if missing:
        raise ValueError(f"{path}: not a ccdm-gui trajectory file (lacks {missing[:3]})")
    cnn = CNNTrajectory(**{k: data[f"cnn_{k}"] for k in _CNN_FIELDS})
    machine = MachineTrajectory(
        **{k: data[f"machine_{k}"] for k in _MACHINE_FIELDS if f"machine_{k}" in data}
    )
    return Comparison(
        spec=spec_from_json(str(data["spec"])),
        cnn=cnn,
        machine=machine,
        correlation=data["correlation"],
    )
