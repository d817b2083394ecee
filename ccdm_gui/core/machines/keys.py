"""Streaming the candidate patches of a problem out of the training set, chunk by chunk.

Patches are cut on the fly, so memory holds the training set plus one chunk, never the
whole patch bank (N * (H-P+1) * (W-P+1) * P*P*C floats would not fit for MNIST).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .candidates import Problem
from .patches import centre_values, gather_patches
from .streaming import KeyChunk


def key_chunks(
    train: torch.Tensor, problem: Problem, patch_size: int, chunk: int
) -> Iterator[KeyChunk]:
    """Yield the problem's candidates, about ``chunk`` per group at a time, image-major."""
    n_total, c = train.shape[:2]
    g, kp = problem.groups, problem.keys_per_image
    if kp >= chunk:
        n_img, kp_blk = 1, chunk
    else:
        n_img, kp_blk = max(1, chunk // kp), kp
    for n0 in range(0, n_total, n_img):
        imgs = train[n0 : n0 + n_img]
        n = imgs.shape[0]
        for kp0 in range(0, kp, kp_blk):
            kpos = problem.kpos[:, kp0 : kp0 + kp_blk]
            kb = kpos.shape[1]
            flat = kpos.reshape(-1, 2)
            patches = gather_patches(imgs, flat, patch_size, problem.key_boundary)
            keys = patches.reshape(n, g, kb, -1).transpose(0, 1).reshape(g, n * kb, -1)
            vals = centre_values(imgs, flat).reshape(n, g, kb, c).transpose(0, 1)
            yield KeyChunk(keys, vals.reshape(g, n * kb, c), n0, kp0, kb)


def image_chunks(train: torch.Tensor, chunk: int) -> Iterator[KeyChunk]:
    """The ideal machine's candidates: whole images, which are also its values."""
    flat = train.reshape(train.shape[0], -1)
    for n0 in range(0, flat.shape[0], chunk):
        block = flat[n0 : n0 + chunk][None]
        yield KeyChunk(block, block, n0, 0, 1)
