"""Exact merging of identical candidate patches, cached per training set.

Real images repeat patches: for MNIST at P = 3 most of the ~900k valid windows of 1,000
images are the constant background. Identical patches have identical logits and values,
so a group of c of them can be streamed once with every accumulated column scaled by c
(see ``streaming``): x0, the softmax normaliser and the entropy over the original
candidates come out the same, the logit and weight stay per candidate, and the group is
named after its first member in the original image-major order, so the argmax (which
keeps the first of equal maxima) picks the same source as without merging.

Grouping is by a float64 random (separable) projection of each window (a hash; equal
windows give equal hashes), then every window is compared with its group's first
member, so a hash collision can only switch merging off, never merge different patches.

The app calls a machine about 20 times per trajectory with one training set and a few
patch sizes, so the merged banks (and the decisions not to merge) are cached.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Switch for tests and benchmarks: merging changes speed only, never the result.
ENABLED = True
# Merging pays only when it removes a good share of the candidates; below that the
# hashing pass and the cached bank's memory buy too little.
MAX_UNIQUE_FRACTION = 0.75
# Bound on the cached banks' memory; least recently used banks go first. Entries also
# pile up for training subsets made afresh per call (one class), hence a count bound.
CACHE_BYTES = 1 << 28
CACHE_ENTRIES = 32
# Window elements per hashing chunk.
_HASH_CHUNK_ELEMENTS = 1 << 22


@dataclass
class UniqueKeys:
    keys: torch.Tensor  # [D, U] distinct windows, keys-last, ordered by first occurrence
    values: torch.Tensor  # [C, U] their centre pixels
    counts: torch.Tensor  # [U] how many candidates each stands for (work dtype)
    origin: torch.Tensor  # [U] int64 first occurrence: image * keys_per_image + position
    keys_per_image: int

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values, self.counts))


_cache: OrderedDict[tuple, tuple[weakref.ref, UniqueKeys | None]] = OrderedDict()
# The app's worker threads may run machines side by side.
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _cache_key(source: torch.Tensor, work: torch.Tensor, patch_size: int) -> tuple | None:
    try:
        version = source._version
    except RuntimeError:  # inference tensors track no version: no safe way to cache
        return None
    return (
        id(source),
        source.data_ptr(),
        tuple(source.shape),
        tuple(source.stride()),
        source.dtype,
        str(source.device),
        version,
        patch_size,
        work.dtype,
    )


def unique_valid_keys(
    source: torch.Tensor, train: torch.Tensor, patch_size: int
) -> UniqueKeys | None:
    """The distinct valid P x P windows of ``train`` (the caller's ``source`` converted to
    the work dtype), or None when merging would not pay."""
    key = _cache_key(source, train, patch_size)
    with _lock:
        if key is not None and key in _cache:
            ref, found = _cache[key]
            # id and data_ptr can be reused by a new tensor once the old one is freed;
            # the weak reference tells the same live tensor apart from such a newcomer.
            if ref() is source:
                _cache.move_to_end(key)
                return found
            del _cache[key]
    found = _merge(train, patch_size)
    if key is not None:
        with _lock:
            _cache[key] = (weakref.ref(source), found)
            total = sum(e.nbytes for _, e in _cache.values() if e is not None)
            while len(_cache) > 1 and (total > CACHE_BYTES or len(_cache) > CACHE_ENTRIES):
                _, (_, old) = _cache.popitem(last=False)
                total -= old.nbytes if old is not None else 0
    return found


def _windows(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[n, C, H, W] -> [n * Kp, D] valid windows as rows, image-major, in the machines'
    order (rows: gathering whole rows is several times faster than gathering columns of
    the keys-last layout the banks use, which _merge makes once at the end)."""
    cols = F.unfold(imgs, patch_size)  # [n, D, Kp]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _hashes(imgs: torch.Tensor, across: list[float], down: list[list[float]]) -> torch.Tensor:
    """A float64 hash of every valid window of ``imgs`` [n, C, H, W], image-major as
    _windows: sum over (c, i, j) of down[c][i] * across[j] * window[c, i, j].

    A separable projection, as shifted sums over whole images: P + C * P passes instead
    of unfolding every window for a dense projection (4.3-13x faster at P = 3-11 on
    MNIST, bench/merge.py; a new patch size costs the app one such pass). Every
    window's sum runs in the same order, so equal windows get equal bits; two different
    windows share a hash only where the random bilinear form of their difference is
    zero, and merging checks every window against its group anyway.
    """
    x = imgs.double()
    p = len(across)
    kh, kw = x.shape[2] - p + 1, x.shape[3] - p + 1
    rows = across[0] * x[..., :kw]
    for j in range(1, p):
        rows += across[j] * x[..., j : j + kw]  # [n, C, H, kw]
    out = torch.zeros(x.shape[0], kh, kw, dtype=x.dtype, device=x.device)
    for ch, weights in enumerate(down):
        for i, a in enumerate(weights):
            out += a * rows[:, ch, i : i + kh]
    return out.reshape(-1)


def _merge(train: torch.Tensor, patch_size: int) -> UniqueKeys | None:
    n, c, h, w = train.shape
    p, half = patch_size, patch_size // 2
    kh, kw = h - p + 1, w - p + 1
    kp = kh * kw
    dim = c * p * p
    total = n * kp
    step = max(1, _HASH_CHUNK_ELEMENTS // (dim * kp))
    gen = torch.Generator(device="cpu").manual_seed(0x5EED)
    across = torch.randn(p, generator=gen, dtype=torch.float64).tolist()
    down = torch.randn(c, p, generator=gen, dtype=torch.float64).tolist()
    hashes = torch.cat([_hashes(train[i : i + step], across, down) for i in range(0, n, step)])
    _, inverse, counts = torch.unique(hashes, return_inverse=True, return_counts=True)
    u = counts.numel()
    if u > MAX_UNIQUE_FRACTION * total:
        return None
    order = torch.arange(total, device=train.device)
    first = torch.full((u,), total, dtype=torch.long, device=train.device)
    first.scatter_reduce_(0, inverse, order, "amin")
    # Renumber groups by first occurrence, so equal logits of different groups tie-break
    # exactly as over the original candidate order.
    perm = torch.argsort(first)
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(u, device=train.device)
    inverse = rank[inverse]
    first, counts = first[perm], counts[perm]
    keys = torch.empty(u, dim, dtype=train.dtype, device=train.device)  # rows, as _windows
    filled = 0
    for i in range(0, n, step):
        win = _windows(train[i : i + step], p)
        lo, hi = i * kp, i * kp + win.shape[0]
        # Groups are numbered by first occurrence, so the ones first seen in this chunk
        # are the next ones in order, and all others were filled by earlier chunks.
        new = int(torch.searchsorted(first, hi).item())
        keys[filled:new] = win[first[filled:new] - lo]
        filled = new
        if not torch.equal(win, keys[inverse[lo:hi]]):
            return None  # a hash collision: leave these candidates unmerged
    keys = keys.T.contiguous()
    img = torch.div(first, kp, rounding_mode="floor")
    pos = first % kp
    rows = half + torch.div(pos, kw, rounding_mode="floor")
    cols = half + pos % kw
    values = train[img, :, rows, cols].T.contiguous()  # [C, U]
    return UniqueKeys(keys, values, counts.to(train.dtype), first, kp)
