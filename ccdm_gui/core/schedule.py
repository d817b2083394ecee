"""Noise schedules: where a model's noise levels lie and which of them a K-step DDIM visits.

Two kinds, one interface (``Schedule``):

- ``ContinuousSchedule``: abar is a function of t in [0, 1] and the network takes t itself
  (the paper's legacy cosine, which ccdm's own models and the paper's code use);
  DDIM visits t_i = i / K, i = K .. 1, and lands on t = 0.
- ``DiscreteSchedule``: ``alphas_cumprod`` over the model's training timesteps 0 .. T-1
  and the network takes the integer timestep (diffusers models). DDIM visits the
  timesteps and lands on the previous ones exactly as diffusers' ``DDIMScheduler`` does.

Both hand the sampler ``grid(K)``: K steps (t, abar, abar_next), noisiest first; the
denoiser is asked at t (signal fraction abar) and the update lands at abar_next. That is
the next step's abar, except where diffusers lands elsewhere (DDIMScheduler.step goes to
timestep - T // K whatever the spacing, so with "trailing" or "linspace" spacing the
next step starts from a slightly different noise level than the update reached, and
diffusers runs it so). ``t`` is the noise time shown to users and keyed by calibrated
P(t); ``abar(t)`` gives the signal fraction at any visited t, which the machines read.

The module also keeps the legacy cosine as plain functions (``abar``, ``x0_from_eps``...),
which training and the legacy default use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

_S = 1.008


def abar(t: float) -> float:
    """Legacy cosine abar(t) = cos^2(pi t / (2 * 1.008)); abar(0) = 1, abar(1) ~ 1.55e-4."""
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


def x0_from_eps_at(x: torch.Tensor, eps: torch.Tensor, ab: float) -> torch.Tensor:
    return (x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)


def eps_from_x0_at(x: torch.Tensor, x0: torch.Tensor, ab: float) -> torch.Tensor:
    if ab >= 1.0:
        raise ValueError("eps is undefined without noise (abar = 1)")
    return (x - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)


@dataclass(frozen=True)
class GridPoint:
    t: float
    abar: float
    abar_next: float


class Schedule:
    """What the sampler, the machines, calibration and evaluation read of a model's noise."""

    def grid(self, steps: int) -> list[GridPoint]:
        raise NotImplementedError

    def abar(self, t: float) -> float:
        raise NotImplementedError

    def model_time(self, t: float):
        """What the network takes as its time input at grid time ``t``."""
        raise NotImplementedError

    def times(self, steps: int) -> list[float]:
        """The K times the denoiser is asked at (noisiest first)."""
        return [p.t for p in self.grid(steps)]


@dataclass(frozen=True)
class ContinuousSchedule(Schedule):
    name: str
    abar_fn: Callable[[float], float]

    def grid(self, steps: int) -> list[GridPoint]:
        ts = time_grid(steps) + [0.0]
        pairs = zip(ts[:-1], ts[1:], strict=True)
        return [GridPoint(a, self.abar_fn(a), self.abar_fn(b)) for a, b in pairs]

    def abar(self, t: float) -> float:
        return self.abar_fn(t)

    def model_time(self, t: float) -> float:
        return float(t)


LEGACY_COSINE = ContinuousSchedule("legacy_cosine", abar)

TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


@dataclass(frozen=True)
class DiscreteSchedule(Schedule):
    """``alphas_cumprod`` over T training timesteps, visited as diffusers' DDIMScheduler
    visits them (``timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``).

    Grid time of timestep k is (k + 1) / T, so the T timesteps fill (0, 1].
    """

    alphas_cumprod: tuple[float, ...]
    timestep_spacing: str = "leading"
    steps_offset: int = 0
    set_alpha_to_one: bool = True
    name: str = "discrete"
    _ac: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"timestep_spacing {self.timestep_spacing!r} is not one of {TIMESTEP_SPACINGS}"
            )
        object.__setattr__(self, "_ac", np.asarray(self.alphas_cumprod, dtype=np.float64))

    @property
    def num_train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def timesteps(self, steps: int) -> np.ndarray:
        """The K timesteps, noisiest first, as ``DDIMScheduler.set_timesteps(K)`` makes them."""
        T = self.num_train_timesteps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be 1 .. {T} (the model's timesteps), got {steps}")
        if self.timestep_spacing == "linspace":
            ts = np.linspace(0, T - 1, steps).round()[::-1].copy().astype(np.int64)
        elif self.timestep_spacing == "leading":
            ratio = T // steps
            ts = (np.arange(0, steps) * ratio).round()[::-1].copy().astype(np.int64)
            ts += self.steps_offset
        else:
            ratio = T / steps
            ts = np.round(np.arange(T, 0, -ratio)).astype(np.int64) - 1
        return ts

    def _final_abar(self) -> float:
        return 1.0 if self.set_alpha_to_one else float(self._ac[0])

    def grid(self, steps: int) -> list[GridPoint]:
        jump = self.num_train_timesteps // steps
        out = []
        for k in self.timesteps(steps).tolist():
            prev = k - jump
            ab_next = float(self._ac[prev]) if prev >= 0 else self._final_abar()
            out.append(GridPoint(self.t_of(k), float(self._ac[k]), ab_next))
        return out

    def t_of(self, timestep: int) -> float:
        return (int(timestep) + 1) / self.num_train_timesteps

    def timestep_of(self, t: float) -> int:
        k = int(round(float(t) * self.num_train_timesteps)) - 1
        if not 0 <= k < self.num_train_timesteps:
            raise ValueError(f"t = {t} is not one of the model's timesteps")
        return k

    def abar(self, t: float) -> float:
        return float(self._ac[self.timestep_of(t)])

    def model_time(self, t: float) -> int:
        return self.timestep_of(t)


def discrete_from_config(alphas_cumprod: Sequence[float], config: dict) -> DiscreteSchedule:
    """A DiscreteSchedule from a diffusers scheduler config (keys as diffusers writes them)."""
    return DiscreteSchedule(
        alphas_cumprod=tuple(float(a) for a in alphas_cumprod),
        timestep_spacing=str(config.get("timestep_spacing", "leading")),
        steps_offset=int(config.get("steps_offset", 0) or 0),
        set_alpha_to_one=bool(config.get("set_alpha_to_one", True)),
        name=str(config.get("beta_schedule", "discrete")),
    )
