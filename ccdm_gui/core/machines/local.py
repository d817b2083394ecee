"""The local score machine (LS) by box filters instead of patch products.

An LS pixel's candidates are the N training patches centred at that same pixel, so its
cross term is a window sum of the product image: <x_patch(i,j), t_patch(i,j)> =
sum over the P x P window around (i,j) of x * t. One product image and one window sum
per (noisy image, training image) pair gives every pixel's logit at once, and no patch
is ever materialised. The window sum is two matrix products with band matrices of ones
(H*W*(H + W) multiply-adds per pair, whatever P, at matrix-product speed) instead of
H*W*C*P*P for cutting and multiplying patches. The patch norms are window sums of t*t,
shared by every noisy image. bbELS's corner pixels are LS pixels too (corner_mosaic).

The softmax over the N training images is streamed over chunks of images with an exact
running log-sum-exp, as in ``streaming``.
"""

from __future__ import annotations

import torch

from .limits import FLOOR
from .patches import window_band

# Logit elements per chunk of training images (B * n * H * W), about 16 MiB of float32.
_CHUNK_ELEMENTS = 1 << 22


def window_sums(images: torch.Tensor, patch_size: int, boundary: str) -> torch.Tensor:
    """[n, H, W] -> [n, H, W]: the sum over each pixel's P x P window (zero or circular
    padding, any P), as two products with band matrices of ones: a window sum along an
    axis is a matrix product, and on a CPU that ran 10-45x faster than sum pooling
    (avg_pool2d, 1,000 images of 28x28 or 32x32, P = 1-21)."""
    h, w = images.shape[-2:]
    rows = window_band(h, patch_size, images, boundary)
    cols = window_band(w, patch_size, images, boundary)
    return torch.matmul(rows, images @ cols.T)


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


def corner_mosaic(images: torch.Tensor, d: int) -> torch.Tensor:
    """[n, C, H, W] -> [n, C, 4d, 4d]: the four 2d x 2d corner blocks side by side.

    A bbELS corner pixel (within d of two borders) has one candidate per training image,
    the patch at its own place: it is an LS pixel. Its window reaches at most 2d - 1 rows
    and columns in from the corner and beyond it only zero padding, so in this mosaic
    (zero padded again) it sees exactly the same window. LS of the mosaic then costs
    about (4d)^2 pixels' box sums, not a bank of every corner pixel's patches.
    """
    k = 2 * d
    top = torch.cat([images[..., :k, :k], images[..., :k, -k:]], -1)
    bottom = torch.cat([images[..., -k:, :k], images[..., -k:, -k:]], -1)
    return torch.cat([top, bottom], -2)


def mosaic_position(rows: torch.Tensor, cols: torch.Tensor, h: int, w: int, d: int):
    """Where corner pixels (rows, cols) of an H x W image lie in ``corner_mosaic``."""
    far_r, far_c = rows >= h - d, cols >= w - d
    return torch.where(far_r, rows - h + 4 * d, rows), torch.where(far_c, cols - w + 4 * d, cols)
