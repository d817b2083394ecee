"""Adapters that give every denoiser the sampler's interface (x_t, t) -> x0_hat."""

from __future__ import annotations

import torch

from .machine_registry import machine as machine_entry
from .machines import MachineOutput, machine_denoise
from .predictors import EpsPredictor, Prediction
from .schedule import LEGACY_COSINE, Schedule, eps_from_x0_at


class CNNDenoiser:
    """A network at one class label (or none). ``model`` is a predictor (x, t, labels) ->
    Prediction, or a bare eps network on the legacy cosine schedule."""

    def __init__(self, model, label: int | None = None):
        self.predict = EpsPredictor(model) if isinstance(model, torch.nn.Module) else model
        self.label = label

    def __call__(self, x: torch.Tensor, t: float) -> Prediction:
        lab = None
        if self.label is not None:
            lab = torch.full((x.shape[0],), int(self.label), dtype=torch.long, device=x.device)
        return self.predict(x, t, lab)

    def eps(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return self(x, t).eps


class MachineDenoiser:
    """A score machine as a sampler denoiser: (x_t, t) -> MachineOutput (x0 plus provenance).

    ``patch_size`` is one odd P for every step, or a function t -> P (a calibrated
    schedule); the P used last is kept in ``last_patch_size`` for the trajectory record.
    abar at t comes from the model's ``schedule``.
    """

    def __init__(
        self,
        train: torch.Tensor,
        machine: str = "bbels",
        patch_size=3,
        boundary: str = "zeros",
        schedule: Schedule = LEGACY_COSINE,
    ):
        self.train = train
        self.machine = machine
        self.boundary = boundary
        self.patch_size = patch_size
        self.schedule = schedule
        self.last_patch_size: int | None = None

    def patch_size_at(self, t: float) -> int:
        p = self.patch_size(t) if callable(self.patch_size) else self.patch_size
        return int(p)

    def __call__(self, x: torch.Tensor, t: float) -> MachineOutput:
        p = self.patch_size_at(t)
        self.last_patch_size = p
        if not machine_entry(self.machine).has_patch_size:
            # A whole-image machine ignores P but still validates it as odd; an image
            # size (often even) is what callers report for it.
            p |= 1
        return machine_denoise(
            x,
            self.schedule.abar(t),
            self.train,
            machine=self.machine,
            patch_size=p,
            boundary=self.boundary,
        )

    def eps(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return eps_from_x0_at(x, self(x, t).x0, self.schedule.abar(t))
