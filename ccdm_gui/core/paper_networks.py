"""The networks of the paper's reference code (Kamb & Ganguli's MinimalResNet and
MinimalUNet), written here so that their checkpoints run without their code.

Module and parameter names follow their state dicts, so their weights load as they are.
Both predict eps from (x_t, t[, label]) with t the continuous time in [0, 1] fed
unscaled to a sinusoidal embedding with frequencies 10000^(-k / (d - 1)), k = 0 .. d-1.
"""

from __future__ import annotations

import torch
from torch import nn

PADDINGS = ("zeros", "circular")
NORMS = (None, "GroupNorm", "BatchNorm")


def _time(t, batch: int, device) -> torch.Tensor:
    if not torch.is_tensor(t):
        t = torch.tensor(float(t))
    t = t.to(device=device, dtype=torch.float32)
    return t.expand(batch) if t.dim() == 0 else t


class PaperEmbedding(nn.Module):
    def __init__(self, dim: int, num_classes: int = 0):
        super().__init__()
        self.dim = dim
        self.num_classes = num_classes
        if num_classes > 0:
            self.class_embeddings = nn.Embedding(num_classes, dim)

    def forward(self, t: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        d = self.dim // 2
        freqs = 10000 ** (torch.arange(d, device=t.device) / (d - 1))
        arg = t[:, None] / freqs[None, :]
        e = torch.cat((torch.sin(arg), torch.cos(arg)), dim=1)
        if self.num_classes > 0:
            if label is None:
                raise ValueError("this model is class-conditional: a class label is required")
            e = e + self.class_embeddings(label)
        return e


def _conv(cin: int, cout: int, k: int, padding: str) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding="same", padding_mode=padding)


def _check(padding: str, normalization) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if normalization not in NORMS:
        raise ValueError(f"normalization must be one of {NORMS}, got {normalization!r}")


class PaperResNet(nn.Module):
    """up_projection, num_layers residual convs h <- h + conv(h + emb_i), a last bias
    (``add_one``) or doubling, down_projection."""

    def __init__(
        self,
        channels: int = 1,
        width: int = 128,
        layers: int = 6,
        num_classes: int = 0,
        padding: str = "zeros",
        kernel_size: int = 3,
        last_kernel_size: int = 1,
        normalization: str | None = None,
        add_one: bool = True,
    ):
        super().__init__()
        _check(padding, normalization)
        w = width
        self.layers = layers
        self.embedding = PaperEmbedding(w, num_classes)
        self.up_projection = _conv(channels, w, kernel_size, padding)

        def emb():
            return nn.Sequential(nn.Linear(w, w), nn.GroupNorm(8, w), nn.ReLU())

        self.embs = nn.ModuleList([emb() for _ in range(layers + (1 if add_one else 0))])

        def block():
            parts = [_conv(w, w, kernel_size, padding)]
            if normalization is not None:
                parts.append(nn.GroupNorm(8, w))
            return nn.Sequential(*parts, nn.ReLU())

        self.convs = nn.ModuleList([block() for _ in range(layers)])
        down = _conv(w, channels, last_kernel_size, padding)
        self.down_projection = (
            down if normalization is None else nn.Sequential(nn.GroupNorm(8, w), down)
        )

    def forward(self, x: torch.Tensor, t, label: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embedding(_time(t, x.shape[0], x.device), label)
        h = self.up_projection(x)
        for i in range(self.layers):
            h = h + self.convs[i](h + self.embs[i](e)[:, :, None, None])
        extra = self.embs[-1](e)[:, :, None, None] if len(self.embs) > self.layers else h
        return self.down_projection(h + extra)


def _norm(kind: str | None, features: int) -> list[nn.Module]:
    if kind == "GroupNorm":
        return [nn.GroupNorm(min(32, features), features)]
    if kind == "BatchNorm":
        return [nn.BatchNorm2d(features)]
    return []


class PaperUBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, padding: str, emb_dim: int, norm, depth=2):
        super().__init__()
        self.emb = nn.Sequential(nn.ReLU(), nn.Linear(emb_dim, cin))
        parts: list[nn.Module] = []
        for i in range(depth):
            parts += [
                _conv(cin if i == 0 else cout, cout, k, padding),
                *_norm(norm, cout),
                nn.ReLU(),
            ]
        self.model = nn.Sequential(*parts)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.model(x + self.emb(e)[:, :, None, None])


class PaperUNet(nn.Module):
    """UBlocks at widths fsizes[:-1] with max-pooling, a bottleneck at fsizes[-1],
    transposed-conv upsampling with skip concatenation, a last embedding bias and conv."""

    def __init__(
        self,
        channels: int = 1,
        fsizes: tuple[int, ...] = (32, 64, 128, 256),
        num_classes: int = 0,
        padding: str = "zeros",
        emb_dim: int = 256,
        kernel_size: int = 3,
        last_kernel_size: int = 1,
        normalization: str | None = None,
        last_norm: bool = False,
    ):
        super().__init__()
        _check(padding, normalization)
        f = list(fsizes)
        self.embedding = PaperEmbedding(emb_dim, num_classes)
        blocks, cin = [], channels
        for width in f[:-1]:
            blocks.append(PaperUBlock(cin, width, kernel_size, padding, emb_dim, normalization))
            cin = width
        self.feature_blocks = nn.ModuleList(blocks)
        self.bottleneck = PaperUBlock(f[-2], f[-1], kernel_size, padding, emb_dim, normalization)
        self.upsamples = nn.ModuleList()
        self.output_blocks = nn.ModuleList()
        for i in range(len(f) - 1, 0, -1):
            self.upsamples.append(nn.ConvTranspose2d(f[i], f[i - 1], kernel_size=2, stride=2))
            # the reference code builds its output blocks with the default 3x3 kernel
            self.output_blocks.append(
                PaperUBlock(2 * f[i - 1], f[i - 1], 3, padding, emb_dim, normalization)
            )
        self.last_emb = nn.Sequential(nn.ReLU(), nn.Linear(emb_dim, f[0]))
        self.output_conv = _conv(f[0], channels, last_kernel_size, padding)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        norm = _norm(normalization, f[0]) if last_norm else []
        self.last_normalizer = norm[0] if norm else None

    def forward(self, x: torch.Tensor, t, label: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embedding(_time(t, x.shape[0], x.device), label)
        skips = []
        for down in self.feature_blocks:
            x = down(x, e)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x, e)
        for up, block, skip in zip(self.upsamples, self.output_blocks, skips[::-1], strict=True):
            x = block(torch.cat((skip, up(x)), dim=1), e)
        x = x + self.last_emb(e)[:, :, None, None]
        if self.last_normalizer is not None:
            x = self.last_normalizer(x)
        return self.output_conv(x)
