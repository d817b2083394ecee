"""Calibrate a model's patch-size schedule P(t) for each score machine (docs/design.md).

For K seeds the CNN runs its own DDIM trajectory. At every step, on the very x_t the CNN
saw, each machine's eps is computed for every odd P in the grid; per seed the P with
the highest (uncentred) cosine similarity to the CNN's eps wins, and the lower median
over seeds is the calibrated value (a grid value, unlike a plain median).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .denoisers import MachineDenoiser
from .machine_registry import check_pair
from .machine_registry import machine as machine_entry
from .metrics import cosine_similarity_batch, lower_median
from .predictors import Prediction
from .sampler import Cancelled, ddim_update, initial_noise
from .schedule import LEGACY_COSINE, Schedule, eps_from_x0_at, x0_from_eps_at

# The network under study: eps, or a Prediction (x0 and eps, as a predictor gives them).
EpsFn = Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor | Prediction]


@dataclass
class CalibrationResult:
    machines: list[str]
    p_values: list[int]
    seeds: list[int]
    t: np.ndarray  # [T] the DDIM grid, noisiest first (as the trajectory ran)
    # machine -> [T, len(p_values), K] cosine similarity of machine eps to CNN eps
    similarity: dict[str, np.ndarray] = field(default_factory=dict)
    # machine -> [T, K] the winning P per step and seed
    best: dict[str, np.ndarray] = field(default_factory=dict)

    def schedule(self, machine: str) -> list[int]:
        """P per step with t ascending: index i holds t = (i + 1) / T, the layout that
        checkpoints store and ``pipeline.patch_schedule`` reads."""
        per_step = [int(lower_median(row)) for row in self.best[machine]]
        return per_step[::-1]

    def schedules(self) -> dict[str, list[int]]:
        return {m: self.schedule(m) for m in self.machines}

    def table(self, machine: str) -> str:
        """Median similarity over seeds per (t, P), the chosen P marked with '*'."""
        sched = self.schedule(machine)[::-1]
        head = "    t  " + " ".join(f"P={p:<4d}" for p in self.p_values) + "  chosen"
        lines = [f"[{machine}] median cosine similarity of eps over {len(self.seeds)} seeds", head]
        for i, t in enumerate(self.t):
            med = np.median(self.similarity[machine][i], axis=1)
            cells = []
            for j, p in enumerate(self.p_values):
                mark = "*" if p == sched[i] else " "
                cells.append(f"{med[j]:.4f}{mark}"[:7].ljust(7))
            lines.append(f"{t:5.2f}  " + " ".join(cells) + f"  {sched[i]}")
        return "\n".join(lines)


def odd_grid(p_max: int, p_min: int = 3) -> list[int]:
    if p_max < p_min:
        raise ValueError(f"p_max must be >= {p_min}, got {p_max}")
    return list(range(p_min | 1, p_max + 1, 2))


def calibrate(
    cnn_eps: EpsFn,
    train_for_label: Callable[[int | None], torch.Tensor],
    shape: tuple[int, int, int],
    machines: Sequence[str],
    p_values: Sequence[int],
    seeds: Sequence[int],
    *,
    labels: Sequence[int | None] | None = None,
    boundary: str | dict[str, str] = "zeros",
    steps: int = 20,
    schedule: Schedule = LEGACY_COSINE,
    device: str = "cpu",
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> CalibrationResult:
    """``cnn_eps(x [B,C,H,W], t, labels [B] or None)`` is the network under study, run on
    its noise ``schedule``;
    ``train_for_label(label)`` the machine's training images for that class (None: all).
    Seeds that share a label go through the machine as one batch."""
    seeds = [int(s) for s in seeds]
    labels = list(labels) if labels is not None else [None] * len(seeds)
    if len(labels) != len(seeds):
        raise ValueError("one label per seed")
    machines = list(machines)
    p_values = [int(p) for p in p_values]
    bounds = boundary if isinstance(boundary, dict) else {m: boundary for m in machines}
    x = torch.cat([initial_noise((1, *shape), s, device) for s in seeds])
    lab_t = None
    if any(lab is not None for lab in labels):
        lab_t = torch.tensor([int(v) for v in labels], dtype=torch.long, device=device)
    groups: dict[int | None, list[int]] = {}
    for k, lab in enumerate(labels):
        groups.setdefault(lab, []).append(k)
    trains = {lab: train_for_label(lab) for lab in groups}

    grid = schedule.grid(steps)
    k_total = len(seeds)
    res = CalibrationResult(machines, p_values, seeds, np.array([g.t for g in grid]))
    for m in machines:
        res.similarity[m] = np.zeros((steps, len(p_values), k_total))
    total = steps * len(machines) * len(p_values)
    done = 0
    for i in range(steps):
        t, ab, ab_next = grid[i].t, grid[i].abar, grid[i].abar_next
        with torch.no_grad():
            out = cnn_eps(x, t, lab_t)
        if isinstance(out, Prediction):
            eps_cnn, x0 = out.eps, out.x0
        else:
            eps_cnn, x0 = out, x0_from_eps_at(x, out, ab)
        for m in machines:
            for j, p in enumerate(p_values):
                if should_cancel is not None and should_cancel():
                    raise Cancelled()
                eps_m = torch.empty_like(x)
                for lab, ks in groups.items():
                    den = MachineDenoiser(trains[lab], m, p, bounds[m], schedule)
                    idx = torch.tensor(ks, device=x.device)
                    xb = x[idx]
                    eps_m[idx] = eps_from_x0_at(xb, den(xb, t).x0, ab)
                res.similarity[m][i, j] = cosine_similarity_batch(eps_cnn, eps_m)
                done += 1
                if on_progress is not None:
                    on_progress(done, total)
        x = ddim_update(x, x0, ab, ab_next, eps_cnn)
    for m in machines:
        # nan (a degenerate eps) must never win, so it ranks below every real value.
        sim = np.nan_to_num(res.similarity[m], nan=-np.inf)
        res.best[m] = np.asarray(p_values)[np.argmax(sim, axis=1)]
    return res


def calibrate_model(
    model_path: str,
    dataset_path: str,
    *,
    subset: int = 5000,
    seeds: Sequence[int] = range(10),
    machines: Sequence[str] = ("bbels",),
    p_max: int = 17,
    boundary: str | None = None,
    steps: int = 20,
    device: str = "cpu",
    write: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> CalibrationResult:
    """Calibrate a model against a dataset; with ``write`` the schedules are stored where
    the model's format keeps them (loaders.write_calibration: a ccdm checkpoint's metadata,
    a JSON beside other models), atomically, merged with those of other machines.

    The boundary defaults to the model's padding; a machine not defined for it (bbELS
    on a circular model) is a ValueError.
    """
    from .loaders import write_calibration
    from .pipeline import load_model, load_training_images
    from .spec import RunSpec

    model = load_model(model_path, device)
    info = model.info
    seeds = [int(s) for s in seeds]
    labels = [info.label_for_seed(s) for s in seeds]
    pad = boundary or info.padding
    for m in machines:
        check_pair(m, pad)
        if not machine_entry(m).has_patch_size:
            raise ValueError(f"{m} compares whole images; it has no P(t) to calibrate")

    def train_for_label(lab: int | None) -> torch.Tensor:
        spec = RunSpec(
            model=model_path, dataset=dataset_path, subset=subset, label=lab, device=device
        )
        return load_training_images(spec, info).images

    def cnn_eps(x: torch.Tensor, t: float, lab: torch.Tensor | None) -> Prediction:
        return model.predictor(x, t, lab if info.num_classes > 0 else None)

    res = calibrate(
        cnn_eps,
        train_for_label,
        (info.channels, info.image_size, info.image_size),
        machines,
        odd_grid(p_max),
        seeds,
        labels=labels,
        boundary=pad,
        steps=steps,
        schedule=model.schedule,
        device=device,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    if write:
        merged = dict(info.calibrated_p or {})
        merged.update({machine_entry(m).calibration_key: s for m, s in res.schedules().items()})
        write_calibration(model_path, merged)
    return res
