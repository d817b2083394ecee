"""The local score machine (LS) by box filters instead of patch products.

An LS pixel's candidates are the N training patches centred at that same pixel, so its
cross term is a window sum of the product image: <x_patch(i,j), t_patch(i,j)> =
sum over the P x P window around (i,j) of x * t. One product and one separable window
sum per (noisy image, training image) pair gives every pixel's logit at once: about
H*W*(C + 2P) operations per pair instead of H*W*C*P*P for cutting and multiplying
patches, and no patch is ever materialised. The patch norms are window sums of t*t,
shared by every noisy image.

The softmax over the N training images is streamed over chunks of images with an exact
running log-sum-exp, as in ``streaming``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .patches import pad_images
from .streaming import FLOOR

# Logit elements per chunk of training images (B * n * H * W), about 16 MiB of float32.
_CHUNK_ELEMENTS = 1 << 22


def window_sums(images: torch.Tensor, patch_size: int, boundary: str) -> torch.Tensor:
    """[n, H, W] -> [n, H, W]: the sum over each pixel's P x P window (zero or circular
    padding, any P), as two one-dimensional sums of P terms each."""
    d = patch_size // 2
    padded = pad_images(images[:, None], d, boundary)
    rows = F.avg_pool2d(padded, (patch_size, 1), stride=1, divisor_override=1)
    return F.avg_pool2d(rows, (1, patch_size), stride=1, divisor_override=1)[:, 0]


class _LocalState:
    """Per (noisy image, pixel): the running maximum m of the logits (exact, so it is also
    the winner's logit), sum of weights s, value sums, the entropy accumulator
    u = sum e (l - m), and the argmax."""

    def __init__(self, b: int, c: int, h: int, w: int, like: torch.Tensor):
        def zeros(*shape):
            return torch.zeros(*shape, dtype=like.dtype, device=like.device)

        self.m: torch.Tensor | None = None
        self.s, self.u, self.acc = zeros(b, h, w), zeros(b, h, w), zeros(b, c, h, w)
        self.best_index = torch.zeros(b, h, w, dtype=torch.long, device=like.device)

    def update(self, logits: torch.Tensor, values: torch.Tensor, first: int) -> None:
        """logits [B, n, H, W] of training images first..first+n-1 with values [n, C, H, W]."""
        cmax, arg = logits.max(1)
        if self.m is None:
            self.m, self.best_index = cmax, arg + first
        else:
            better = cmax > self.m
            self.best_index = torch.where(better, arg + first, self.best_index)
            m_new = torch.maximum(self.m, cmax)
            scale = torch.exp(self.m - m_new)
            self.u = scale * (self.u - (m_new - self.m) * self.s)
            self.s.mul_(scale)
            self.acc.mul_(scale[:, None])
            self.m = m_new
        rel = logits.sub_(self.m[:, None]).clamp_min_(FLOOR)
        e = torch.exp(rel)
        self.s += e.sum(1)
        self.u += (e * rel).sum(1)
        for ch in range(values.shape[1]):
            self.acc[:, ch] += (e * values[None, :, ch]).sum(1)


def local_denoise(
    x: torch.Tensor, train: torch.Tensor, a: float, v: float, patch_size: int, boundary: str
):
    """LS x0_hat with provenance: (x0, source_index, weight, entropy)."""
    b, c, h, w = x.shape
    n_total = train.shape[0]
    state = _LocalState(b, c, h, w, x)
    xs = x * (a / v)
    step = max(1, _CHUNK_ELEMENTS // (b * h * w))
    for n0 in range(0, n_total, step):
        t = train[n0 : n0 + step]
        n = t.shape[0]
        # sum over channels commutes with the window sum: one window sum per pair.
        cross = xs[:, None, 0] * t[None, :, 0]
        for ch in range(1, c):
            cross += xs[:, None, ch] * t[None, :, ch]
        cross = cross.reshape(b * n, h, w)
        logits = window_sums(cross, patch_size, boundary).view(b, n, h, w)
        norms = window_sums((t * t).sum(1), patch_size, boundary)
        logits -= (a * a / (2.0 * v)) * norms[None]
        state.update(logits, t, n0)
    s = state.s
    weight = 1.0 / s  # the winner's logit is m, so its weight is exp(0) / s
    entropy = (torch.log(s) - state.u / s).clamp_min_(0.0)
    return state.acc / s[:, None], state.best_index, weight, entropy
