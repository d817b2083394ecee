"""Streaming the candidate patches of a problem out of the training set, chunk by chunk.

Patches are cut on the fly, so memory holds the training set plus one chunk, never the
whole patch bank (N * (H-P+1) * (W-P+1) * P*P*C floats would not fit for MNIST).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .candidates import Problem
from .patches import centre_values, gather_patches
from .streaming import KeyChunk


def _bank(g: int, d: int, c: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """[G, D + 2 + C, K]: rows 0..D-1 patches, D and D+1 for the streaming state, then
    the values. Keys lie along the last axis so the logits product needs no transpose."""
    return torch.empty(g, d + 2 + c, k, dtype=like.dtype, device=like.device)


def key_chunks(
    train: torch.Tensor, problem: Problem, patch_size: int, chunk: int
) -> Iterator[KeyChunk]:
    """Yield the problem's candidates, about ``chunk`` per group at a time, image-major."""
    n_total, c = train.shape[:2]
    g, kp = problem.groups, problem.keys_per_image
    dim = c * patch_size * patch_size
    if kp >= chunk:
        n_img, kp_blk = 1, chunk
    else:
        n_img, kp_blk = max(1, chunk // kp), kp
    half = patch_size // 2
    for n0 in range(0, n_total, n_img):
        imgs = train[n0 : n0 + n_img]
        n = imgs.shape[0]
        if problem.all_valid:
            cols = F.unfold(imgs, patch_size)  # [n, D, Kp], im2col
            centres = imgs[:, :, half : imgs.shape[2] - half, half : imgs.shape[3] - half]
            centres = centres.reshape(n, c, kp)
            for kp0 in range(0, kp, kp_blk):
                kb = min(kp_blk, kp - kp0)
                bank = _bank(1, dim, c, n * kb, train)
                bank[0, :dim].view(dim, n, kb).copy_(cols[:, :, kp0 : kp0 + kb].transpose(0, 1))
                bank[0, dim + 2 :].view(c, n, kb).copy_(
                    centres[:, :, kp0 : kp0 + kb].transpose(0, 1)
                )
                yield KeyChunk(bank, n0, kp0, kb)
            continue
        for kp0 in range(0, kp, kp_blk):
            kpos = problem.kpos[:, kp0 : kp0 + kp_blk]
            kb = kpos.shape[1]
            flat = kpos.reshape(-1, 2)
            patches = gather_patches(imgs, flat, patch_size, problem.key_boundary)
            bank = _bank(g, dim, c, n * kb, train)
            # [n, G*kb, D] -> [G, D, n, kb]
            bank[:, :dim].view(g, dim, n, kb).copy_(patches.view(n, g, kb, dim).permute(1, 3, 0, 2))
            vals = centre_values(imgs, flat).view(n, g, kb, c).permute(1, 3, 0, 2)
            bank[:, dim + 2 :].view(g, c, n, kb).copy_(vals)
            yield KeyChunk(bank, n0, kp0, kb)


def image_chunks(train: torch.Tensor, chunk: int) -> Iterator[KeyChunk]:
    """The ideal machine's candidates: whole images, which are also its values."""
    flat = train.reshape(train.shape[0], -1)
    dim = flat.shape[1]
    for n0 in range(0, flat.shape[0], chunk):
        block = flat[n0 : n0 + chunk].T
        bank = _bank(1, dim, dim, block.shape[1], train)
        bank[0, :dim] = block
        bank[0, dim + 2 :] = block
        yield KeyChunk(bank, n0, 0, 1)
