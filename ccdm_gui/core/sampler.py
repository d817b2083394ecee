"""Deterministic DDIM (eta = 0) that drives any denoiser (x_t, t) -> x0_hat.

A denoiser may return a tensor or an object with an ``x0`` attribute (the score
machines return provenance beside it); whatever it returns is recorded per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .schedule import abar, time_grid


class Cancelled(Exception):
    """Raised between steps when the caller's cancel check says stop."""


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


def ddim_step(x: torch.Tensor, x0: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    ab, ab_next = abar(t), abar(t_next)
    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
    return math.sqrt(ab_next) * x0 + math.sqrt(1.0 - ab_next) * eps


def sample(
    denoiser: Callable[[torch.Tensor, float], Any],
    x_init: torch.Tensor,
    steps: int,
    *,
    on_step: Callable[[int, Step], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Trajectory:
    """Run DDIM from ``x_init`` (taken as x at t = 1) over ``steps`` grid points."""
    grid = time_grid(steps) + [0.0]
    traj = Trajectory()
    x = x_init
    for i in range(steps):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        t, t_next = grid[i], grid[i + 1]
        out = denoiser(x, t)
        x0 = out if isinstance(out, torch.Tensor) else out.x0
        extra = None if isinstance(out, torch.Tensor) else out
        step = Step(t=t, x_t=x, x0=x0, extra=extra)
        traj.steps.append(step)
        if on_step is not None:
            on_step(i, step)
        x = ddim_step(x, x0, t, t_next) if t_next > 0 else x0
    traj.final = x
    return traj
