"""Adapters that give every denoiser the sampler's interface (x_t, t) -> x0_hat."""

from __future__ import annotations

import torch

from .schedule import x0_from_eps


class CNNDenoiser:
    def __init__(self, net: torch.nn.Module, label: int | None = None):
        self.net = net
        self.label = label

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: float) -> torch.Tensor:
        lab = None
        if self.label is not None:
            lab = torch.full((x.shape[0],), int(self.label), dtype=torch.long, device=x.device)
        return self.net(x, t, lab)

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        return x0_from_eps(x, self.eps(x, t), t)
