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
from .patches import centre_values, gather_patches, pad_images, window_band
from .streaming import KeyChunk


def _bank(g: int, d: int, c: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """[G, D + 2 + C, K]: rows 0..D-1 patches, D and D+1 for the streaming state, then
    the values. Keys lie along the last axis so the logits product needs no transpose."""
    return torch.empty(g, d + 2 + c, k, dtype=like.dtype, device=like.device)


def slab_windows(
    padded: torch.Tensor, problem: Problem, patch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of a one-group "valid" problem's slab (edge strips are cut by
    strip_chunk, corners are LS pixels: api._corners): keys [n, D, 1, Kp] and centre
    values [n, C, 1, Kp]."""
    ((r0, r1, c0, c1),) = problem.slabs
    n, c = padded.shape[:2]
    p, d = patch_size, patch_size // 2
    slab = padded[:, :, r0:r1, c0:c1]
    nr, nc = r1 - r0 - p + 1, c1 - c0 - p + 1
    keys = F.unfold(slab, p).view(n, -1, 1, nr * nc)
    return keys, slab[:, :, d : d + nr, d : d + nc].reshape(n, c, 1, nr * nc)


def _slab(images: torch.Tensor, problem: Problem, p: int) -> torch.Tensor:
    """The rectangle of the padded images that holds a one-group problem's windows; a
    view when it lies inside the images (ELS, the bbELS interior), else padded."""
    ((r0, r1, c0, c1),) = problem.slabs
    d = p // 2
    h, w = images.shape[-2:]
    if r0 >= d and c0 >= d and r1 <= h + d and c1 <= w + d:
        return images[:, :, r0 - d : r1 - d, c0 - d : c1 - d]
    return pad_images(images, d, problem.key_boundary)[:, :, r0:r1, c0:c1]


def _fill_whole(bank: torch.Tensor, slab: torch.Tensor, p: int) -> None:
    """Cut every key of a one-group "valid" problem straight into ``bank`` [1, D + 2 + C,
    n * Kp], with each key's squared norm in row D and -1 in row D + 1 (see
    streaming.KeyChunk).

    Windows are a strided view of the padded images ([n, C, nr, nc, P, P], no copy), so
    the only copy is the one into the bank, laid out as the logits product wants it.
    That is about 3x faster than unfold (im2col) followed by a transposing copy.
    """
    n, c, hs, ws = slab.shape
    d, dim = p // 2, c * p * p
    nr, nc = hs - p + 1, ws - p + 1
    win = slab.unfold(2, p, 1).unfold(3, p, 1)  # [n, C, nr, nc, P, P]
    cen = slab[:, :, d : d + nr, d : d + nc]  # [n, C, nr, nc]
    shift = torch.full_like(cen[:, :1], -1.0)
    per_key = torch.cat([_window_norms(slab, p), shift, cen], 1)  # [n, 2 + C, nr, nc]
    # Keys row-major over the windows: the views permuted to the bank's order
    # (C, P, P, image, window row, window column).
    bank[0, :dim].view(c, p, p, n, nr, nc).copy_(win.permute(1, 4, 5, 0, 2, 3))
    bank[0, dim:].view(2 + c, n, nr, nc).copy_(per_key.permute(1, 0, 2, 3))


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


def zero_padded_slab(images: torch.Tensor, d: int, slab: tuple[int, int, int, int]):
    """``pad_images(images, d, "zeros")[..., r0:r1, c0:c1]`` without padding the rest."""
    r0, r1, c0, c1 = slab
    h, w = images.shape[-2:]
    a0, a1 = max(r0 - d, 0), min(r1 - d, h)
    b0, b1 = max(c0 - d, 0), min(c1 - d, w)
    part = images[..., a0:a1, b0:b1]
    return F.pad(part, (b0 - (c0 - d), (c1 - d) - b1, a0 - (r0 - d), (r1 - d) - a1))


def strip_chunk(images: torch.Tensor, problem: Problem, p: int, n0: int) -> KeyChunk:
    """An edge strip's keys without a bank: every window row of the strip is the
    same array of unfolded image rows, read from a different row on.

    An edge pixel's keys serve only the few queries of its strip, so copying each
    window into a bank (C*P*P floats per key) cost more than the products that read
    it; here each image row is unfolded once (P floats per key and row) and group g
    reads rows g..g+P-1 of it through a strided view.
    """
    slab = zero_padded_slab(images, p // 2, problem.slabs[0])
    if problem.layout == "cols":
        slab = slab.transpose(2, 3)
    n, c, hs, ws = slab.shape
    nr, nc, d = hs - p + 1, ws - p + 1, p // 2
    # rows[r, ch, ox, i, k] = slab[i, ch, r, k + ox]; the slab is first put image-inner
    # (a small copy), so the big copy below reads neighbouring memory.
    by_row = slab.permute(2, 1, 0, 3).contiguous()  # [hs, C, n, ws]
    rows = by_row.unfold(3, p, 1).permute(0, 1, 4, 2, 3).contiguous()
    keys = rows.as_strided((nr, p * c * p, n * nc), (c * p * n * nc, n * nc, 1))
    aux = torch.empty(nr, 2 + c, n, nc, dtype=slab.dtype, device=slab.device)
    aux[:, 0] = _window_norms(slab, p)[:, 0].permute(1, 0, 2)
    aux[:, 1] = -1.0
    aux[:, 2:] = slab[:, :, d : d + nr, d : d + nc].permute(2, 1, 0, 3)
    return KeyChunk(aux.view(nr, 2 + c, n * nc), n0, 0, nc, norms=True, keys=keys)


def _window_norms(slab: torch.Tensor, p: int) -> torch.Tensor:
    """Squared norm of every P x P window of ``slab`` [n, C, h, w] -> [n, 1, nr, nc].

    Window sums of the squared pixels as two float64 products with band matrices of
    ones (a window sum along an axis is a matrix product): exact to float64 rounding,
    and several times faster than box sums of an integral image (cumsums). Each sum is
    one 2-D product over all images: a batch of per-image products (a broadcast band)
    took 6x longer for the chunks of about 100 images the machines cut.
    """
    x = slab.to(torch.float64)
    sq = x[:, 0].square() if x.shape[1] == 1 else x.square().sum(1)
    n, h, w = sq.shape
    rows, cols = window_band(h, p, sq), window_band(w, p, sq)
    across = (sq.reshape(n * h, w) @ cols.T).view(n, h, -1)  # [n, h, nc]
    down = rows @ across.transpose(0, 1).reshape(h, -1)  # [nr, n * nc]
    return down.view(rows.shape[0], n, -1).transpose(0, 1)[:, None].to(slab.dtype)


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
        if strips:  # bbELS edges: zero boundary
            yield strip_chunk(imgs, problem, patch_size, n0)
            continue
        if problem.slabs:
            if kp_blk == kp:  # one group: ELS, the bbELS interior
                bank = _bank(g, dim, c, n * kp, train)
                _fill_whole(bank, _slab(imgs, problem, patch_size), patch_size)
                yield KeyChunk(bank, n0, 0, kp, norms=True)
                continue
            padded = pad_images(imgs, patch_size // 2, problem.key_boundary)
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
    """A problem's merged valid windows (one group), ``chunk`` at a time, each cut from
    the training set where it first occurs."""
    c = found.train.shape[1]
    dim = c * found.patch_size**2
    total = found.origin.numel()
    for j0 in range(0, total, chunk):
        j1 = min(total, j0 + chunk)
        keys, values = found.windows(j0, j1)
        bank = _bank(1, dim, c, j1 - j0, found.train)
        bank[0, :dim] = keys
        bank[0, dim + 2 :] = values
        origin = found.origin[j0:j1].to(torch.int64)
        yield KeyChunk(bank, 0, 0, found.keys_per_image, found.counts[j0:j1], origin)
