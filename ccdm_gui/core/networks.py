"""The paper's CNN denoisers (docs/design.md, The CNN denoisers): a minimal ResNet and a small UNet.

Both predict eps from (x_t, t[, label]); ``t`` is the continuous time in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .paper_networks import PaperResNet, PaperUNet

EMB_DIM = 256
PADDINGS = ("zeros", "circular")


def sinusoidal_embedding(t: torch.Tensor, dim: int = EMB_DIM) -> torch.Tensor:
    # t is scaled by 1000 so that the discrete training grid spans the usual range.
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    ang = (t.float() * 1000.0)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


class _Embedding(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.label = nn.Embedding(num_classes, EMB_DIM) if num_classes > 0 else None

    def forward(self, t: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        e = sinusoidal_embedding(t)
        if self.label is not None:
            if label is None:
                raise ValueError("this model is class-conditional: a class label is required")
            e = e + self.label(label)
        return e


def _bias_head(channels: int) -> nn.Module:
    if channels % 8:
        # GroupNorm(8) needs >= 8 channels; the image-channel input of a UNet gets a plain bias.
        return nn.Linear(EMB_DIM, channels)
    return nn.Sequential(nn.Linear(EMB_DIM, channels), nn.GroupNorm(8, channels), nn.ReLU())


def _as_time(t, batch: int, device) -> torch.Tensor:
    if not torch.is_tensor(t):
        t = torch.tensor(float(t))
    t = t.to(device=device, dtype=torch.float32)
    return t.expand(batch) if t.dim() == 0 else t


class ResNetDenoiser(nn.Module):
    """conv_in, ``blocks`` residual blocks h <- h + ReLU(conv(h + e_i)), bias, conv_out."""

    def __init__(
        self,
        channels: int = 1,
        width: int = 256,
        blocks: int = 6,
        num_classes: int = 0,
        padding: str = "zeros",
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        conv = dict(kernel_size=3, padding=1, padding_mode=padding)
        self.embed = _Embedding(num_classes)
        self.conv_in = nn.Conv2d(channels, width, **conv)
        self.heads = nn.ModuleList([_bias_head(width) for _ in range(blocks)])
        self.convs = nn.ModuleList([nn.Conv2d(width, width, **conv) for _ in range(blocks)])
        self.final_bias = nn.Parameter(torch.zeros(width))
        self.conv_out = nn.Conv2d(width, channels, **conv)

    def forward(self, x: torch.Tensor, t, label: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(_as_time(t, x.shape[0], x.device), label)
        h = self.conv_in(x)
        for head, conv in zip(self.heads, self.convs, strict=True):
            h = h + F.relu(conv(h + head(e)[:, :, None, None]))
        return self.conv_out(h + self.final_bias[None, :, None, None])


class _UBlock(nn.Module):
    def __init__(self, cin: int, cout: int, padding: str):
        super().__init__()
        conv = dict(kernel_size=3, padding=1, padding_mode=padding)
        self.head = _bias_head(cin)
        self.c1 = nn.Conv2d(cin, cout, **conv)
        self.c2 = nn.Conv2d(cout, cout, **conv)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = h + self.head(e)[:, :, None, None]
        return F.relu(self.c2(F.relu(self.c1(h))))


class UNetDenoiser(nn.Module):
    """Three scales (w, 2w, 4w), max-pool down, transposed conv up, skip concatenation."""

    def __init__(
        self,
        channels: int = 1,
        width: int = 64,
        num_classes: int = 0,
        padding: str = "zeros",
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        w = width
        self.embed = _Embedding(num_classes)
        self.enc1 = _UBlock(channels, w, padding)
        self.enc2 = _UBlock(w, 2 * w, padding)
        self.mid = _UBlock(2 * w, 4 * w, padding)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, kernel_size=2, stride=2)
        self.dec2 = _UBlock(4 * w, 2 * w, padding)
        self.up1 = nn.ConvTranspose2d(2 * w, w, kernel_size=2, stride=2)
        self.dec1 = _UBlock(2 * w, w, padding)
        self.out = nn.Conv2d(w, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, t, label: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"UNet needs height and width divisible by 4, got {tuple(x.shape)}")
        e = self.embed(_as_time(t, x.shape[0], x.device), label)
        h1 = self.enc1(x, e)
        h2 = self.enc2(F.max_pool2d(h1, 2), e)
        h3 = self.mid(F.max_pool2d(h2, 2), e)
        d2 = self.dec2(torch.cat([self.up2(h3), h2], dim=1), e)
        d1 = self.dec1(torch.cat([self.up1(d2), h1], dim=1), e)
        return self.out(d1)


ARCHITECTURES = {
    "resnet": ResNetDenoiser,
    "unet": UNetDenoiser,
    "paper_resnet": PaperResNet,
    "paper_unet": PaperUNet,
}


def build_network(arch: str, **params) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](**params)


def receptive_field(net: nn.Module, channels: int, size: int = 48, t: float = 0.5) -> tuple:
    """(height, width) of the set of input pixels that move the centre output pixel.

    Measured from the Jacobian of the centre pixel at a random input, so it reports
    what the trained (or random) weights actually see, not a formula.
    """
    net = net.eval()
    x = torch.randn(1, channels, size, size, requires_grad=True)
    label = None
    if getattr(net.embed, "num_classes", 0) > 0:
        label = torch.zeros(1, dtype=torch.long)
    out = net(x, t, label)
    out[0, :, size // 2, size // 2].sum().backward()
    g = x.grad.abs().sum(dim=(0, 1))
    rows = torch.nonzero(g.sum(dim=1) > 0).flatten()
    cols = torch.nonzero(g.sum(dim=0) > 0).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
