"""Streaming the candidate patches of a problem out of the training set, chunk by chunk.

Patches are cut on the fly, so memory holds the training set plus one chunk, never the
whole patch bank (N * (H-P+1) * (W-P+1) * P*P*C floats would not fit for MNIST).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from .candidates import Problem
from .dedup import UniqueKeys
from .patches import centre_values, gather_patches, pad_images
from .streaming import KeyChunk


def _bank(g: int, d: int, c: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """[G, D + 2 + C, K]: rows 0..D-1 patches, D and D+1 for the streaming state, then
    the values. Keys lie along the last axis so the logits product needs no transpose."""
    return torch.empty(g, d + 2 + c, k, dtype=like.dtype, device=like.device)


def slab_windows(
    padded: torch.Tensor, problem: Problem, patch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of the problem's slabs: keys [n, D, G, Kp] and centre values [n, C, G, Kp]."""
    n, c = padded.shape[:2]
    p, d = patch_size, patch_size // 2
    keys, vals = [], []
    for r0, r1, c0, c1 in problem.slabs:
        slab = padded[:, :, r0:r1, c0:c1]
        nr, nc = r1 - r0 - p + 1, c1 - c0 - p + 1
        k = F.unfold(slab, p).view(n, -1, nr, nc)
        v = slab[:, :, d : d + nr, d : d + nc]
        # Edge strips ("rows", "cols") never come here: see strip_chunk.
        shape = (1, nr * nc) if problem.layout == "valid" else (nr * nc, 1)
        k, v = k.reshape(n, -1, *shape), v.reshape(n, c, *shape)
        keys.append(k)
        vals.append(v)
    if len(keys) == 1:
        return keys[0], vals[0]
    return torch.cat(keys, 2), torch.cat(vals, 2)


def _fill_whole(bank: torch.Tensor, padded: torch.Tensor, problem: Problem, p: int) -> None:
    """Cut every key of the problem straight into ``bank`` [G, D + 2 + C, n * Kp], with
    each key's squared norm in row D and -1 in row D + 1 (see streaming.KeyChunk).

    Windows are a strided view of the padded images ([n, C, nr, nc, P, P], no copy), so
    the only copy is the one into the bank, laid out as the logits product wants it.
    That is about 3x faster than unfold (im2col) followed by a transposing copy.
    """
    n, c = padded.shape[:2]
    g, kp = problem.groups, problem.keys_per_image
    d, dim = p // 2, c * p * p
    keys = bank[:, :dim].view(g, c, p, p, n, kp)
    rows = bank[:, dim:].view(g, 2 + c, n, kp)  # norm, shift, values
    g0 = 0
    for r0, r1, c0, c1 in problem.slabs:
        slab = padded[:, :, r0:r1, c0:c1]
        nr, nc = r1 - r0 - p + 1, c1 - c0 - p + 1
        win = slab.unfold(2, p, 1).unfold(3, p, 1)  # [n, C, nr, nc, P, P]
        cen = slab[:, :, d : d + nr, d : d + nc]  # [n, C, nr, nc]
        shift = torch.full_like(cen[:, :1], -1.0)
        per_key = torch.cat([_window_norms(slab, p), shift, cen], 1)  # [n, 2 + C, nr, nc]
        # Per layout: groups in this slab, then the window and per-key views permuted to
        # the bank's order (group, C, P, P, image, key), with the group and key axes split
        # as the layout splits them.
        e = 2 + c
        if problem.layout == "valid":  # one group, keys row-major over the windows
            gs, ks, vs = 1, (c, p, p, n, nr, nc), (e, n, nr, nc)
            wk, ck = win.permute(1, 4, 5, 0, 2, 3), per_key.permute(1, 0, 2, 3)
        else:  # "each": a group per window, one key per image ("rows", "cols": strip_chunk)
            gs, ks, vs = nr * nc, (nr, nc, c, p, p, n), (nr, nc, e, n)
            wk, ck = win.permute(2, 3, 1, 4, 5, 0), per_key.permute(2, 3, 1, 0)
        keys[g0 : g0 + gs].view(ks).copy_(wk)
        rows[g0 : g0 + gs].view(vs).copy_(ck)
        g0 += gs


def strip_keys(problem: Problem) -> bool:
    """Keys of this problem come as overlapping views (strip_chunk), whose patches are
    flattened row by row across channels: (P, C, P) for "rows", (P, C, P) of the
    transposed patch for "cols"; queries must be flattened the same way."""
    return problem.layout in ("rows", "cols") and len(problem.slabs) == 1


def strip_order(q: torch.Tensor, layout: str, c: int, p: int) -> torch.Tensor:
    """Query patches [G, M, C*P*P] flattened (C, P, P) -> the order of strip_chunk's keys:
    row by row across channels, (P, C, P); for a column strip the patch transposed."""
    g, m, d = q.shape
    patch = q.view(g, m, c, p, p)
    order = (0, 1, 3, 2, 4) if layout == "rows" else (0, 1, 4, 2, 3)
    return patch.permute(order).reshape(g, m, d)


def strip_chunk(padded: torch.Tensor, problem: Problem, p: int, n0: int) -> KeyChunk:
    """An edge strip's keys without a bank: every window row of the strip is the
    same array of unfolded image rows, read from a different row on.

    An edge pixel's keys serve only the few queries of its strip, so copying each
    window into a bank (C*P*P floats per key) cost more than the products that read
    it; here each image row is unfolded once (P floats per key and row) and group g
    reads rows g..g+P-1 of it through a strided view.
    """
    r0, r1, c0, c1 = problem.slabs[0]
    slab = padded[:, :, r0:r1, c0:c1]
    if problem.layout == "cols":
        slab = slab.transpose(2, 3)
    n, c, hs, ws = slab.shape
    nr, nc, d = hs - p + 1, ws - p + 1, p // 2
    # rows[r, ch, ox, i, k] = slab[i, ch, r, k + ox]
    rows = slab.unfold(3, p, 1).permute(2, 1, 4, 0, 3).contiguous()
    keys = rows.as_strided((nr, p * c * p, n * nc), (c * p * n * nc, n * nc, 1))
    aux = torch.empty(nr, 2 + c, n, nc, dtype=padded.dtype, device=padded.device)
    aux[:, 0] = _window_norms(slab, p)[:, 0].permute(1, 0, 2)
    aux[:, 1] = -1.0
    aux[:, 2:] = slab[:, :, d : d + nr, d : d + nc].permute(2, 1, 0, 3)
    return KeyChunk(aux.view(nr, 2 + c, n * nc), n0, 0, nc, norms=True, keys=keys)


def _window_norms(slab: torch.Tensor, p: int) -> torch.Tensor:
    """Squared norm of every P x P window of ``slab`` [n, C, h, w] -> [n, 1, nr, nc].

    Box sums of the squared pixels from a float64 integral image: exact to float64
    rounding, where differences of large float32 prefix sums would lose digits.
    """
    sq = slab.to(torch.float64).square().sum(1)
    cs = F.pad(sq.cumsum(1).cumsum(2), (1, 0, 1, 0))
    box = cs[:, p:, p:] - cs[:, :-p, p:] - cs[:, p:, :-p] + cs[:, :-p, :-p]
    return box[:, None].to(slab.dtype)


def key_chunks(
    train: torch.Tensor, problem: Problem, patch_size: int, chunk: int
) -> Iterator[KeyChunk]:
    """Yield the problem's candidates, about ``chunk`` per group at a time, image-major."""
    n_total, c = train.shape[:2]
    g, kp = problem.groups, problem.keys_per_image
    dim = c * patch_size * patch_size
    strips = strip_keys(problem)
    if kp >= chunk and not strips:
        n_img, kp_blk = 1, chunk
    else:
        n_img, kp_blk = max(1, chunk // kp), kp
    for n0 in range(0, n_total, n_img):
        imgs = train[n0 : n0 + n_img]
        n = imgs.shape[0]
        if problem.slabs:
            padded = pad_images(imgs, patch_size // 2, problem.key_boundary)
            if strips:
                yield strip_chunk(padded, problem, patch_size, n0)
                continue
            if kp_blk == kp:
                bank = _bank(g, dim, c, n * kp, train)
                _fill_whole(bank, padded, problem, patch_size)
                yield KeyChunk(bank, n0, 0, kp, norms=True)
                continue
            # Part of an image's keys per chunk (huge images): unfold, then slice.
            keys, vals = slab_windows(padded, problem, patch_size)
            for kp0 in range(0, kp, kp_blk):
                kb = min(kp_blk, kp - kp0)
                bank = _bank(g, dim, c, n * kb, train)
                # [n, D, G, kb] -> [G, D, n, kb]
                bank[:, :dim].view(g, dim, n, kb).copy_(
                    keys[..., kp0 : kp0 + kb].permute(2, 1, 0, 3)
                )
                bank[:, dim + 2 :].view(g, c, n, kb).copy_(
                    vals[..., kp0 : kp0 + kb].permute(2, 1, 0, 3)
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


def unique_chunks(found: UniqueKeys, chunk: int) -> Iterator[KeyChunk]:
    """A problem's merged valid windows (one group), ``chunk`` at a time."""
    dim, c = found.keys.shape[0], found.values.shape[0]
    total = found.keys.shape[1]
    for j0 in range(0, total, chunk):
        j1 = min(total, j0 + chunk)
        bank = _bank(1, dim, c, j1 - j0, found.keys)
        bank[0, :dim] = found.keys[:, j0:j1]
        bank[0, dim + 2 :] = found.values[:, j0:j1]
        yield KeyChunk(bank, 0, 0, found.keys_per_image, found.counts[j0:j1], found.origin[j0:j1])
