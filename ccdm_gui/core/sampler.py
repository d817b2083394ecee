"""Deterministic DDIM (eta = 0) that drives any denoiser (x_t, t) -> x0_hat over a schedule.

A denoiser may return a tensor or an object with an ``x0`` attribute (the score machines
return provenance beside it, a network its own eps); whatever it returns is recorded per
step. Where the output carries ``eps`` (a network's prediction), the update uses it as
diffusers' DDIMScheduler does: with x0 clipped, eps stays the model's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import cancel
from .cancel import Cancelled
from .schedule import LEGACY_COSINE, Schedule, abar

__all__ = ["Cancelled", "Step", "Trajectory", "ddim_step", "ddim_update", "initial_noise", "sample"]


@dataclass
class Step:
    t: float
    x_t: torch.Tensor
    x0: torch.Tensor
    extra: Any = None


@dataclass
class Trajectory:
    steps: list[Step] = field(default_factory=list)
    final: torch.Tensor | None = None


def initial_noise(
    shape: tuple[int, ...], seed: int, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Same seed -> same noise on every device (drawn on the CPU, then moved)."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=torch.float32).to(device)


def ddim_update(
    x: torch.Tensor,
    x0: torch.Tensor,
    ab: float,
    ab_next: float,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """x at the next grid point from x0 (and eps, or the eps that x0 implies)."""
    if ab_next >= 1.0:
        return x0
    if eps is None:
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
    return math.sqrt(ab_next) * x0 + math.sqrt(1.0 - ab_next) * eps


def ddim_step(x: torch.Tensor, x0: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One legacy-cosine step (t -> t_next)."""
    return ddim_update(x, x0, abar(t), abar(t_next))


def sample(
    denoiser: Callable[[torch.Tensor, float], Any],
    x_init: torch.Tensor,
    steps: int,
    *,
    schedule: Schedule = LEGACY_COSINE,
    on_step: Callable[[int, Step], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Trajectory:
    """Run DDIM from ``x_init`` (x at the schedule's noisiest grid point) over ``steps``.
    ``should_cancel`` is asked between steps and, through core.cancel, inside them."""
    grid = schedule.grid(steps)
    traj = Trajectory()
    x = x_init
    with cancel.checking(should_cancel):
        for i in range(steps):
            cancel.check()
            here = grid[i]
            out = denoiser(x, here.t)
            x0 = out if isinstance(out, torch.Tensor) else out.x0
            extra = None if isinstance(out, torch.Tensor) else out
            step = Step(t=here.t, x_t=x, x0=x0, extra=extra)
            traj.steps.append(step)
            if on_step is not None:
                on_step(i, step)
            x = ddim_update(x, x0, here.abar, here.abar_next, getattr(extra, "eps", None))
    traj.final = x
    return traj
