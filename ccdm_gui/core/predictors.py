"""A loaded network as one call: (x_t, t, labels) -> Prediction(x0, eps) on its own schedule.

ccdm's and the paper's networks predict eps from continuous t; diffusers' UNet2DModel
predicts eps, v or x0 from an integer timestep, and its scheduler may clip x0. Everything
that runs a CNN (sampler, calibration, evaluation) goes through a predictor, so none of it
needs to know which kind of network it drives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .schedule import LEGACY_COSINE, DiscreteSchedule, Schedule, x0_from_eps_at

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class Prediction:
    x0: torch.Tensor  # what the update uses (clipped where the model's scheduler clips)
    eps: torch.Tensor  # the model's eps, unclipped


class EpsPredictor:
    """``net(x, t, labels) -> eps`` with t the schedule's model time (ccdm's and the paper's)."""

    def __init__(self, net: torch.nn.Module, schedule: Schedule = LEGACY_COSINE):
        self.net = net
        self.schedule = schedule

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: float, labels: torch.Tensor | None = None):
        eps = self.net(x, self.schedule.model_time(t), labels)
        return Prediction(x0_from_eps_at(x, eps, self.schedule.abar(t)), eps)


class DiffusersPredictor:
    """A diffusers UNet2DModel on its DiscreteSchedule, converted as DDIMScheduler.step
    converts (same float32 arithmetic), clipping x0 to ``clip_range`` when set."""

    def __init__(
        self,
        unet: torch.nn.Module,
        schedule: DiscreteSchedule,
        prediction_type: str = "epsilon",
        clip_range: float | None = None,
    ):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type {prediction_type!r}: not one of {PREDICTION_TYPES}")
        self.net = unet
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.clip_range = clip_range
        self._ac = torch.tensor(schedule.alphas_cumprod, dtype=torch.float32)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, t: float, labels: torch.Tensor | None = None):
        k = self.schedule.timestep_of(t)
        ab = self._ac[k].to(x.device)
        b = 1 - ab
        ts = torch.tensor(k, dtype=torch.long, device=x.device)
        out = self.net(x, ts, class_labels=labels).sample
        if self.prediction_type == "epsilon":
            x0 = (x - b ** (0.5) * out) / ab ** (0.5)
            eps = out
        elif self.prediction_type == "sample":
            x0 = out
            eps = (x - ab ** (0.5) * x0) / b ** (0.5)
        else:
            x0 = (ab**0.5) * x - (b**0.5) * out
            eps = (ab**0.5) * out + (b**0.5) * x
        if self.clip_range is not None:
            x0 = x0.clamp(-self.clip_range, self.clip_range)
        return Prediction(x0, eps)
