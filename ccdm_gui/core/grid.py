"""A grid of samples: for each class (a row pair) and seed (a column), the CNN's DDIM
trajectory and the machine's from the same noise and label, as ``ccdm run --seed S
--label K`` computes each one. The seeds of a class go through the CNN and the machine
as one batch, which is what makes a grid of 10 classes by 16 seeds affordable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .datasets.known import class_names
from .denoisers import CNNDenoiser, MachineDenoiser
from .machine_registry import default_machine
from .metrics import correlation
from .sampler import initial_noise, sample
from .spec import RunSpec


def parse_seeds(text: str) -> list[int]:
    """``0-15``, ``0,3,7`` or a mix (``0-3,9``); ranges include both ends, repeats drop."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"seeds must look like 0-15 or 0,3,7; got {text!r}") from None
        if b < a:
            raise ValueError(f"empty seed range {part!r}")
        if b - a >= 10_000:
            raise ValueError(f"seed range {part!r} is too long for a grid")
        seeds.extend(range(a, b + 1))
    if not seeds:
        raise ValueError("no seeds given")
    return list(dict.fromkeys(seeds))


@dataclass
class SeedGrid:
    model: str
    dataset: str
    machine: str
    boundary: str
    subset: int | None
    steps: int
    labels: list[int | None]  # one per row pair; None: every class
    names: list[str]  # the labels' class names
    seeds: list[int]  # one per column
    t: np.ndarray  # [T], noisiest first
    patch_size: np.ndarray  # [L, T] the P the machine used
    cnn_x0: np.ndarray  # [L, S, T, C, H, W] each step's x0_hat
    machine_x0: np.ndarray  # [L, S, T, C, H, W]
    correlation: np.ndarray  # [L, S] of the final samples

    @property
    def cnn_final(self) -> np.ndarray:
        """[L, S, C, H, W]: the last step's x0_hat is the sample."""
        return self.cnn_x0[:, :, -1]

    @property
    def machine_final(self) -> np.ndarray:
        return self.machine_x0[:, :, -1]


def _stack(steps, attr: str) -> np.ndarray:
    # [T, B, C, H, W] -> [B, T, C, H, W]
    x = torch.stack([getattr(s, attr) for s in steps]).detach().to("cpu", torch.float32)
    return x.transpose(0, 1).numpy().copy()


def seed_grid(
    model_path: str,
    dataset_path: str,
    labels: Sequence[int | None],
    seeds: Sequence[int],
    *,
    steps: int = 20,
    subset: int | None = 1000,
    machine: str | None = None,
    boundary: str | None = None,
    patch_size: int | None = None,
    device: str = "cpu",
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> SeedGrid:
    """Every (label, seed) pair's CNN and machine trajectories. ``machine`` and
    ``boundary`` default as in ``ccdm run``: the model's padding, and bbELS for zeros
    or ELS for circular. Progress counts sampler steps, CNN and machine, over the grid."""
    from .pipeline import cnn_label, load_model, load_training_images, patch_schedule

    if not seeds:
        raise ValueError("a grid needs at least one seed")
    if not labels:
        raise ValueError("a grid needs at least one class")
    model = load_model(model_path, device)
    info = model.info
    boundary = boundary or info.padding
    machine = machine or default_machine(boundary)
    shape = (1, info.channels, info.image_size, info.image_size)
    x_init = torch.cat([initial_noise(shape, int(s), device) for s in seeds])
    total = 2 * steps * len(labels)
    done = 0

    def tick(_i, _step) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    cnn_rows, machine_rows, patch_rows = [], [], []
    for lab in labels:
        spec = RunSpec(
            model=model_path,
            dataset=dataset_path,
            subset=subset,
            label=lab,
            steps=steps,
            machine=machine,
            boundary=boundary,
            patch_size=patch_size,
            device=device,
        )
        cnn = sample(
            CNNDenoiser(model.predictor, cnn_label(spec, info)),
            x_init,
            steps,
            schedule=model.schedule,
            on_step=tick,
            should_cancel=should_cancel,
        )
        ps = patch_schedule(spec, info, model.schedule)
        by_t = {t: int(p) for t, p in zip(model.schedule.times(steps), ps, strict=True)}
        train = load_training_images(spec, info).images
        den = MachineDenoiser(
            train, machine, lambda t, by_t=by_t: by_t[t], boundary, model.schedule
        )
        mach = sample(
            den,
            x_init,
            steps,
            schedule=model.schedule,
            on_step=tick,
            should_cancel=should_cancel,
        )
        cnn_rows.append(_stack(cnn.steps, "x0"))
        machine_rows.append(_stack(mach.steps, "x0"))
        patch_rows.append(np.asarray(ps, dtype=np.int64))
    cnn_x0, machine_x0 = np.stack(cnn_rows), np.stack(machine_rows)
    corr = np.array(
        [
            [correlation(a[-1], b[-1]) for a, b in zip(ra, rb, strict=True)]
            for ra, rb in zip(cnn_x0, machine_x0, strict=True)
        ]
    )
    # An unconditional model's label only narrows the machine's images: name it after
    # the dataset's classes.
    names = class_names(info.dataset.get("id"), info.num_classes or None)
    return SeedGrid(
        model=model_path,
        dataset=dataset_path,
        machine=machine,
        boundary=boundary,
        subset=subset,
        steps=steps,
        labels=list(labels),
        names=[
            "all classes" if lab is None else names[lab] if lab < len(names) else str(lab)
            for lab in labels
        ],
        seeds=[int(s) for s in seeds],
        t=np.array(model.schedule.times(steps), dtype=np.float64),
        patch_size=np.stack(patch_rows),
        cnn_x0=cnn_x0,
        machine_x0=machine_x0,
        correlation=corr,
    )
