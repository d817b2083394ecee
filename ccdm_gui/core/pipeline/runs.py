"""A comparison run: the CNN's DDIM trajectory beside a score machine's, from the same
noise, each streamed step by step and taken from the cache when it is there."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..checkpoint import ModelInfo
from ..denoisers import CNNDenoiser, MachineDenoiser
from ..machines.sharing import Sharing
from ..metrics import correlation
from ..sampler import Step, initial_noise, sample
from ..spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec
from .loading import load_model, load_training_images
from .patch_schedule import patch_schedule
from .trajectory_cache import TrajectoryCache

# (step index, total steps, the trajectory so far) after each step of one part.
OnStep = Callable[[int, int, object], None]
# The same for a whole comparison, with the part ("cnn" or "machine") first.
OnPartStep = Callable[[str, int, int, object], None]


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


def cnn_trajectory(steps: list[Step], final: torch.Tensor) -> CNNTrajectory:
    """The numpy record of a CNN's sampled steps (the first image of the batch)."""
    return CNNTrajectory(
        t=np.array([s.t for s in steps], dtype=np.float64),
        x_t=np.stack([_np(s.x_t[0]) for s in steps]),
        x0=np.stack([_np(s.x0[0]) for s in steps]),
        final=_np(final[0]),
    )


def machine_trajectory(
    steps: list[Step],
    final: torch.Tensor,
    patch_size: np.ndarray,
    train_indices: np.ndarray,
    train_labels: np.ndarray | None = None,
    shared: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> MachineTrajectory:
    """The numpy record of a machine's sampled steps and their provenance (the first
    image of the batch); ``patch_size`` holds the P of each step (at least as many);
    ``shared``: each step's machines.sharing counts (at least as many), if taken."""

    def prov(name: str, dtype) -> np.ndarray:
        return np.stack(
            [getattr(s.extra, name)[0].detach().cpu().numpy().astype(dtype) for s in steps]
        )

    return MachineTrajectory(
        t=np.array([s.t for s in steps], dtype=np.float64),
        patch_size=np.asarray(patch_size[: len(steps)], dtype=np.int64).copy(),
        x_t=np.stack([_np(s.x_t[0]) for s in steps]),
        x0=np.stack([_np(s.x0[0]) for s in steps]),
        source_index=prov("source_index", np.int64),
        source_yx=prov("source_yx", np.int64),
        weight=prov("weight", np.float32),
        entropy=prov("entropy", np.float32),
        final=_np(final[0]),
        train_indices=np.asarray(train_indices, dtype=np.int64).copy(),
        train_labels=train_labels,
        shared_count=None if shared is None else np.stack([c[0] for c, _ in shared[: len(steps)]]),
        shared_images=None if shared is None else np.stack([i[0] for _, i in shared[: len(steps)]]),
    )


def run_cnn(
    spec: RunSpec,
    on_step: OnStep | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> CNNTrajectory:
    model = load_model(spec.model, spec.device)
    den = CNNDenoiser(model.predictor, cnn_label(spec, model.info))
    done: list[Step] = []

    def step_cb(i: int, step: Step) -> None:
        done.append(step)
        if on_step is not None:
            on_step(i, spec.steps, cnn_trajectory(done, step.x0))

    traj = sample(
        den,
        _noise(spec, model.info),
        spec.steps,
        schedule=model.schedule,
        on_step=step_cb,
        should_cancel=should_cancel,
    )
    return cnn_trajectory(traj.steps, traj.final)


def run_machine(
    spec: RunSpec,
    on_step: OnStep | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> MachineTrajectory:
    model = load_model(spec.model, spec.device)
    info, schedule = model.info, model.schedule
    training = load_training_images(spec, info)
    ps = patch_schedule(spec, info, schedule)
    by_t = {t: int(p) for t, p in zip(schedule.times(spec.steps), ps, strict=True)}
    den = MachineDenoiser(training.images, spec.machine, lambda t: by_t[t], spec.boundary, schedule)
    sharing = Sharing(training.images, spec.machine, spec.boundary)
    done: list[Step] = []
    shared: list[tuple[np.ndarray, np.ndarray]] = []

    def record(steps: list[Step], final: torch.Tensor) -> MachineTrajectory:
        return machine_trajectory(steps, final, ps, training.indices, training.labels, shared)

    def step_cb(i: int, step: Step) -> None:
        done.append(step)
        shared.append(sharing.counts(step.extra.source_index, step.extra.source_yx, by_t[step.t]))
        if on_step is not None:
            on_step(i, spec.steps, record(done, step.x0))

    traj = sample(
        den,
        _noise(spec, info),
        spec.steps,
        schedule=schedule,
        on_step=step_cb,
        should_cancel=should_cancel,
    )
    return record(traj.steps, traj.final)


def assemble_comparison(
    spec: RunSpec, cnn: CNNTrajectory, machine: MachineTrajectory
) -> Comparison:
    """Pair two finished trajectories; correlation is taken between the two x0_hat of
    each step, each from its own trajectory."""
    if len(cnn.t) != len(machine.t):
        raise ValueError(f"trajectories differ in length: {len(cnn.t)} vs {len(machine.t)}")
    corr = np.array([correlation(a, b) for a, b in zip(cnn.x0, machine.x0, strict=True)])
    return Comparison(spec=spec, cnn=cnn, machine=machine, correlation=corr)


@dataclass
class Timing:
    """What a comparison cost: seconds per part, and whether the part came from the
    cache (None: the run stopped before reaching it)."""

    cnn_seconds: float = 0.0
    machine_seconds: float = 0.0
    cnn_cached: bool | None = None
    machine_cached: bool | None = None


def run_comparison(
    spec: RunSpec,
    cache: TrajectoryCache | None = None,
    on_step: OnPartStep | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timing: Timing | None = None,
) -> Comparison:
    """CNN then machine, each from the cache when possible. ``on_step(part, i, total,
    trajectory so far)`` follows every step (a cached part reports once, whole);
    ``should_cancel`` is polled between steps (then Cancelled is raised); ``timing``, if
    given, is filled in as the parts run."""
    timing = timing if timing is not None else Timing()

    def part_cb(part: str) -> OnStep | None:
        if on_step is None:
            return None
        return lambda i, total, partial: on_step(part, i, total, partial)

    parts = (
        ("cnn", run_cnn, TrajectoryCache.get_cnn, TrajectoryCache.put_cnn),
        ("machine", run_machine, TrajectoryCache.get_machine, TrajectoryCache.put_machine),
    )
    done = []
    start = time.perf_counter()
    for part, run, get, put in parts:
        traj = get(cache, spec) if cache is not None else None
        # Set before the part runs, so a cancelled run still says which part had started.
        setattr(timing, f"{part}_cached", traj is not None)
        if traj is None:
            traj = run(spec, part_cb(part), should_cancel)
            if cache is not None:
                put(cache, spec, traj)
        elif on_step is not None:
            on_step(part, spec.steps - 1, spec.steps, traj)
        end = time.perf_counter()
        setattr(timing, f"{part}_seconds", end - start)
        start = end
        done.append(traj)
    cnn, machine = done
    return assemble_comparison(spec, cnn, machine)
