"""The paper's "legacy cosine" noise schedule and the eps <-> x0 conversions."""

from __future__ import annotations

import math

import torch

_S = 1.008


def abar(t: float) -> float:
    """Signal fraction abar(t) = cos^2(pi t / (2 * 1.008)); abar(0) = 1, abar(1) ~ 1.55e-4."""
    return math.cos(math.pi * float(t) / (2.0 * _S)) ** 2


def abar_tensor(t: torch.Tensor) -> torch.Tensor:
    return torch.cos(math.pi * t / (2.0 * _S)) ** 2


def x0_from_eps(x: torch.Tensor, eps: torch.Tensor, t: float) -> torch.Tensor:
    ab = abar(t)
    return (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)


def eps_from_x0(x: torch.Tensor, x0: torch.Tensor, t: float) -> torch.Tensor:
    ab = abar(t)
    v = 1.0 - ab
    if v <= 0.0:
        raise ValueError("eps is undefined at t = 0 (no noise)")
    return (x - math.sqrt(ab) * x0) / math.sqrt(v)


def time_grid(steps: int) -> list[float]:
    """DDIM grid t_i = i / n for i = n .. 1 (the last step lands on t = 0)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [i / steps for i in range(steps, 0, -1)]
