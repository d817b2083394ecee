"""Cutting P x P patches out of image batches at given centres.

Queries and keys must flatten their patches in the same (C, P, P) order, so both
go through ``gather_patches``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_index(centres: torch.Tensor, size: int, patch_size: int, boundary: str) -> torch.Tensor:
    """[K] centre coordinates -> [K, P] coordinates of each window along one axis.

    Zeros: coordinates into the image padded by d on both sides. Circular: coordinates
    into the unpadded image, wrapped (works even when d exceeds the image size, which
    ``F.pad(mode="circular")`` refuses).
    """
    d = patch_size // 2
    offsets = torch.arange(patch_size, device=centres.device)
    if boundary == "circular":
        return (centres[:, None] + offsets[None, :] - d) % size
    return centres[:, None] + offsets[None, :]


def window_band(n: int, patch_size: int, like: torch.Tensor, boundary: str = "valid"):
    """Window sums along one axis of length n as a matrix of window counts: entry
    (i, j) counts how often pixel j lies in window i. "valid": [n - P + 1, n], the
    windows fully inside. "zeros" / "circular": [n, n], the window centred on each pixel
    of the padded axis, padding dropped or folded back (a circular window wider than
    the image counts a pixel more than once)."""
    d = patch_size // 2
    size = n if boundary == "valid" else n + 2 * d
    i = torch.arange(size - patch_size + 1, device=like.device)[:, None]
    j = torch.arange(size, device=like.device)[None, :]
    band = ((j >= i) & (j < i + patch_size)).to(like.dtype)
    if boundary == "valid":
        return band
    if boundary == "circular":
        folded = torch.zeros(n, n, dtype=like.dtype, device=like.device)
        return folded.index_add_(1, (j[0] - d) % n, band)
    return band[:, d : d + n]


def pad_for(images: torch.Tensor, patch_size: int, boundary: str) -> torch.Tensor:
    if boundary == "circular":
        return images
    d = patch_size // 2
    return F.pad(images, (d, d, d, d)) if d else images


def pad_images(images: torch.Tensor, d: int, boundary: str) -> torch.Tensor:
    """[n, C, H, W] -> [n, C, H + 2d, W + 2d], zero or circular padding (any d)."""
    if d == 0:
        return images
    if boundary != "circular":
        return F.pad(images, (d, d, d, d))
    h, w = images.shape[-2:]
    rows = torch.arange(-d, h + d, device=images.device) % h
    cols = torch.arange(-d, w + d, device=images.device) % w
    return images[:, :, rows[:, None], cols[None, :]]


def gather_patches(
    images: torch.Tensor, centres: torch.Tensor, patch_size: int, boundary: str
) -> torch.Tensor:
    """images [n, C, H, W], centres [K, 2] (row, col) -> patches [n, K, C*P*P].

    ``boundary`` is "zeros" (zero padding) or "circular"; patches whose window lies
    fully inside the image are the same under both.
    """
    n, c, h, w = images.shape
    p = patch_size
    padded = pad_for(images, p, boundary)
    rows = window_index(centres[:, 0], h, p, boundary)  # [K, P]
    cols = window_index(centres[:, 1], w, p, boundary)  # [K, P]
    # Advanced indexing with [K, P, 1] and [K, 1, P] broadcasts to [n, C, K, P, P].
    patches = padded[:, :, rows[:, :, None], cols[:, None, :]]
    k = centres.shape[0]
    return patches.permute(0, 2, 1, 3, 4).reshape(n, k, c * p * p)


def centre_values(images: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """images [n, C, H, W], centres [K, 2] -> centre pixels [n, K, C]."""
    vals = images[:, :, centres[:, 0], centres[:, 1]]  # [n, C, K]
    return vals.permute(0, 2, 1)


def grid_positions(rows: range, cols: range, device: torch.device | str) -> torch.Tensor:
    """All (row, col) pairs of a rectangle, row-major, as [len(rows)*len(cols), 2]."""
    r = torch.arange(rows.start, rows.stop, device=device)
    c = torch.arange(cols.start, cols.stop, device=device)
    rr, cc = torch.meshgrid(r, c, indexing="ij")
    return torch.stack([rr.reshape(-1), cc.reshape(-1)], dim=1)
