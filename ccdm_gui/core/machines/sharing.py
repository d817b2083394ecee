"""How many of a pixel's candidates are identical to its winning patch, and in how many
training images.

Identical patches have identical logits, so c copies of the winner hold c times its
weight between them: where MNIST's blank background ties across thousands of equal
zero patches, the winner alone holds almost nothing, yet the patch it stands for holds
almost everything. The app tells such a "generic" patch (found in many training images)
apart from real uncertainty (many different patches sharing the weight) with these
counts.

"Identical" means equal at the 8-bit resolution datasets are stored in: resizing
(MNIST's 28 -> 32) leaves blank patches that differ by 1e-4, which no eye and hardly
the softmax tells apart, so pixels are rounded to 1/127.5 steps of [-1, 1] before
comparing; copies then differ by under one level, and the winner's weight times its
copies is the weight of its patch to within that. Windows are compared by a float64
random separable projection (dedup's hash): equal windows get equal bits; different
windows share a hash only where a random bilinear form of their difference vanishes,
so counts are exact but for that (measure-zero) event, which could only raise them.

A ``Sharing`` is made per trajectory (one training set, machine and boundary); it
builds the candidate table of a patch size once and answers every step with lookups.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .candidates import build_problems, effective_machine
from .dedup import _hashes as valid_window_hashes


def levels(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as float64 8-bit levels 0..255 (see the module docstring)."""
    return torch.round((images.detach().to("cpu", torch.float64) + 1.0) * 127.5)


def padded(images: torch.Tensor, d: int, boundary: str) -> torch.Tensor:
    """``images`` [N, C, H, W] padded by d on each side as the machine pads keys."""
    if d == 0:
        return images
    if boundary == "circular":
        h, w = images.shape[-2:]
        rows = torch.arange(-d, h + d) % h
        cols = torch.arange(-d, w + d) % w
        return images[:, :, rows][:, :, :, cols]
    return F.pad(images, (d, d, d, d))


def centred_hashes(images: torch.Tensor, patch_size: int, boundary: str, weights) -> np.ndarray:
    """[N, H, W] float64: the hash of the P x P window centred on every pixel."""
    n, _, h, w = images.shape
    across, down = weights
    x = padded(images, patch_size // 2, boundary)
    return valid_window_hashes(x, across, down).reshape(n, h, w).numpy()


def _runs(gid: np.ndarray, key: np.ndarray, img: np.ndarray):
    """Sorted distinct (gid, key) pairs with how many entries and distinct images each
    has. The entries come ordered by (gid, img), so a stable sort by (gid, key) keeps
    each run's images ascending and a change of image marks a new one."""
    order = np.lexsort((key, gid))
    gid, key, img = gid[order], key[order], img[order]
    new = np.ones(len(gid), dtype=bool)
    new[1:] = (gid[1:] != gid[:-1]) | (key[1:] != key[:-1])
    start = np.flatnonzero(new)
    count = np.diff(np.append(start, len(gid)))
    new_img = new.copy()
    new_img[1:] |= img[1:] != img[:-1]
    images = np.add.reduceat(new_img.astype(np.int64), start)
    return gid[start], key[start], count, images


class _Table:
    """Per query pixel: its candidate group; per (group, window hash): counts."""

    def __init__(self, train: torch.Tensor, machine: str, patch_size: int, boundary: str):
        n, c, h, w = train.shape
        gen = torch.Generator().manual_seed(0x5EED)
        weights = (
            torch.randn(patch_size, generator=gen, dtype=torch.float64).tolist(),
            torch.randn(c, patch_size, generator=gen, dtype=torch.float64).tolist(),
        )
        x = levels(train)
        self.group = np.full((h, w), -1, dtype=np.int64)
        self.hashes: dict[str, np.ndarray] = {}  # key boundary -> [N, H, W]
        self.pixel_boundary = np.empty((h, w), dtype=object)
        gids, keys, imgs = [], [], []
        first = 0
        for prob in build_problems(machine, patch_size, boundary, h, w, "cpu"):
            kb = prob.key_boundary
            if kb not in self.hashes:
                self.hashes[kb] = centred_hashes(x, patch_size, kb, weights)
            table = self.hashes[kb]
            qpos, kpos = prob.qpos.numpy(), prob.kpos.numpy()
            g, kp = kpos.shape[:2]
            ids = first + np.arange(g)
            self.group[qpos[..., 0], qpos[..., 1]] = ids[:, None]
            self.pixel_boundary[qpos[..., 0], qpos[..., 1]] = kb
            cand = table[:, kpos[..., 0], kpos[..., 1]].transpose(1, 0, 2)  # [G, N, Kp]
            gids.append(np.broadcast_to(ids[:, None, None], cand.shape).reshape(-1))
            keys.append(cand.reshape(-1))
            imgs.append(np.broadcast_to(np.arange(n)[None, :, None], cand.shape).reshape(-1))
            first += g
        self.gid, self.key, self.count, self.images = _runs(
            np.concatenate(gids), np.concatenate(keys), np.concatenate(imgs)
        )

    def lookup(self, source_index: np.ndarray, source_yx: np.ndarray):
        """Counts for winners [B, H, W] (image) and [B, H, W, 2] (centre)."""
        b, h, w = source_index.shape
        gid = np.broadcast_to(self.group, (b, h, w))
        key = np.empty((b, h, w), dtype=np.float64)
        for kb, table in self.hashes.items():
            at = np.broadcast_to(self.pixel_boundary == kb, (b, h, w))
            key[at] = table[source_index[at], source_yx[..., 0][at], source_yx[..., 1][at]]
        # (gid, key) rows are sorted by gid then key: find each pixel's row.
        lo = np.searchsorted(self.gid, gid, side="left")
        hi = np.searchsorted(self.gid, gid, side="right")
        pos = np.empty((b, h, w), dtype=np.int64)
        for i in np.unique(gid):
            at = gid == i
            pos[at] = lo[at][0] + np.searchsorted(self.key[lo[at][0] : hi[at][0]], key[at])
        if not np.array_equal(self.key[pos], key):
            raise AssertionError("a winning patch is not among its pixel's candidates")
        return self.count[pos].astype(np.int32), self.images[pos].astype(np.int32)


class Sharing:
    """Counts of patches identical to each pixel's winner, for one trajectory's
    training images [N, C, H, W], machine and boundary."""

    def __init__(self, train: torch.Tensor, machine: str, boundary: str):
        self.train, self.machine, self.boundary = train, machine, boundary
        self._tables: dict[int, _Table | None] = {}
        self._images: np.ndarray | None = None

    def counts(self, source_index, source_yx, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(candidates identical to the winner, training images holding it), each
        int32 [B, H, W] and at least 1, for a machine output's winners."""
        src = np.asarray(_np(source_index), dtype=np.int64)
        yx = np.asarray(_np(source_yx), dtype=np.int64)
        if self.machine == "ideal":
            return self._whole_images(src)
        h, w = src.shape[-2:]
        machine = effective_machine(self.machine, patch_size, h, w)
        key = patch_size if machine != "ls" else -patch_size
        if key not in self._tables:
            self._tables[key] = _Table(self.train, machine, patch_size, self.boundary)
        return self._tables[key].lookup(src, yx)

    def _whole_images(self, src: np.ndarray):
        # The ideal machine's candidates are whole images; exact copies are identical.
        if self._images is None:
            flat = levels(self.train).numpy().reshape(len(self.train), -1)
            _, inverse, counts = np.unique(flat, axis=0, return_inverse=True, return_counts=True)
            self._images = counts[inverse.reshape(-1)].astype(np.int32)
        out = self._images[src]
        return out, out.copy()


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
