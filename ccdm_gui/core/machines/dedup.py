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

Memory: a merge keeps per distinct window only where it first occurs and how many it
stands for (8 bytes; the windows themselves are cut from the training set when
streamed, as unmerged keys are), and builds that in parts: the windows whose hash falls
in one part of the hash's bits at a time, so no array over all N * Kp windows is ever
held (54 million windows at P = 3 for 60,000 MNIST images, 19 million distinct).

The app calls a machine about 20 times per trajectory with one training set and a few
patch sizes, so the merges (and the decisions not to merge) are cached.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace

import torch

from .. import cancel

# Merging pays only when it removes a good share of the candidates; below that the
# hashing pass and the cache's memory buy too little.
MAX_UNIQUE_FRACTION = 0.75
# Bound on the cache's memory; least recently used merges go first. Entries also pile
# up for training subsets made afresh per call (one class), hence a count bound.
CACHE_BYTES = 1 << 28
CACHE_ENTRIES = 32
# Window elements per hashing chunk.
_HASH_CHUNK_ELEMENTS = 1 << 22
# Chunk groups per part of the build's second pass: its sort holds about 40 bytes each.
_PART_WINDOWS = 1 << 22
# A first chunk of images with more distinct windows than this share is taken as the
# sign of data that will not merge (random or photographic), and merging stops there:
# the full pass would cost time and memory to find what the chunk already shows.
_EARLY_UNIQUE_FRACTION = 0.95
# Chunks between trims of the heap during a merge (see _trim_heap): the chunks' freed
# arrays sit between the small ones kept, and glibc holds the pages otherwise.
_TRIM_EVERY = 8
# Windows compared (or cut) per gather: an index of 8 bytes per number.
_GATHER_WINDOWS = 1 << 16


@dataclass
class UniqueKeys:
    origin: torch.Tensor  # [U] first occurrence (image * keys_per_image + position), ascending
    counts: torch.Tensor  # [U] how many candidates each stands for (work dtype)
    keys_per_image: int
    patch_size: int
    # The training images the windows are cut from: set on the copy handed to a call,
    # never kept in the cache (it would keep a freed training set alive).
    train: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.origin, self.counts))

    def windows(self, j0: int, j1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct windows j0..j1-1 keys-last [D, j1 - j0] and their centre pixels
        [C, j1 - j0]."""
        return window_columns(self.train, self.origin[j0:j1], self.patch_size)


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
    found = None
    with _lock:
        if key is not None and key in _cache:
            ref, found = _cache[key]
            # id and data_ptr can be reused by a new tensor once the old one is freed;
            # the weak reference tells the same live tensor apart from such a newcomer.
            if ref() is source:
                _cache.move_to_end(key)
                return None if found is None else replace(found, train=train)
            del _cache[key]
    found = _merge(train, patch_size)
    _trim_heap()
    if key is not None:
        with _lock:
            _cache[key] = (weakref.ref(source), found)
            total = sum(e.nbytes for _, e in _cache.values() if e is not None)
            while len(_cache) > 1 and (total > CACHE_BYTES or len(_cache) > CACHE_ENTRIES):
                _, (_, old) = _cache.popitem(last=False)
                total -= old.nbytes if old is not None else 0
    return None if found is None else replace(found, train=train)


def _trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc only). A merge frees
    thousands of small per-chunk arrays, which glibc otherwise keeps: 200 MB of resident
    memory after a merge of 10,000 MNIST images that keeps 27 MB."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def _windows(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[n, C, H, W] -> [n * Kp, D] valid windows as rows, image-major, (C, P, P) each:
    the machines' order."""
    cols = torch.nn.functional.unfold(imgs, patch_size)  # [n, D, Kp]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _offsets(train: torch.Tensor, index: torch.Tensor, p: int) -> torch.Tensor:
    """Flat offset in ``train`` of the top left pixel of each valid window ``index``
    (image * Kp + row-major position)."""
    n, c, h, w = train.shape
    kw = w - p + 1
    kp = (h - p + 1) * kw
    img = torch.div(index, kp, rounding_mode="floor")
    pos = index - img * kp
    row = torch.div(pos, kw, rounding_mode="floor")
    return img * (c * h * w) + row * w + (pos - row * kw)


def _window_layout(train: torch.Tensor, p: int) -> torch.Tensor:
    """[D] offsets of a window's numbers from its top left pixel, in (C, P, P) order."""
    h, w = train.shape[-2:]
    ch = torch.arange(train.shape[1]) * (h * w)
    i = torch.arange(p) * w
    return (ch[:, None, None] + i[None, :, None] + torch.arange(p)[None, None, :]).reshape(-1)


def window_columns(
    train: torch.Tensor, index: torch.Tensor, p: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid windows ``index`` of ``train`` keys-last [D, K] and their centres [C, K]."""
    flat = train.reshape(-1)
    base = _offsets(train, index.to(torch.int64), p)
    layout = _window_layout(train, p).to(base.device)
    keys = flat[layout[:, None] + base[None, :]]
    h, w = train.shape[-2:]
    half = p // 2
    centre = torch.arange(train.shape[1], device=base.device) * (h * w) + half * w + half
    return keys, flat[centre[:, None] + base[None, :]]


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


def _same_windows(train: torch.Tensor, a: torch.Tensor, b: torch.Tensor, p: int) -> bool:
    """Whether valid windows a[i] and b[i] of ``train`` are equal for every i."""
    flat = train.reshape(-1)
    layout = _window_layout(train, p).to(a.device)
    for s in range(0, a.numel(), _GATHER_WINDOWS):
        wa = flat[_offsets(train, a[s : s + _GATHER_WINDOWS], p)[:, None] + layout]
        wb = flat[_offsets(train, b[s : s + _GATHER_WINDOWS], p)[:, None] + layout]
        if not torch.equal(wa, wb):
            return False
    return True


def _chunk_groups(train: torch.Tensor, p: int, across, down, parts: int):
    """Pass 1: each chunk of images merged on its own (its windows are at hand, so
    every one is checked against its group's first there), its groups sorted into
    ``parts`` by their hash's low bits. Yields per chunk and part (hashes, counts,
    first occurrences), or None for a chunk whose check fails (a hash collision)."""
    n, c, h, w = train.shape
    kp = (h - p + 1) * (w - p + 1)
    step = max(1, _HASH_CHUNK_ELEMENTS // (c * p * p * kp))
    for i in range(0, n, step):
        win = _windows(train[i : i + step], p)
        hsh = _hashes(train[i : i + step], across, down)
        uh, inv, cnt = torch.unique(hsh, return_inverse=True, return_counts=True)
        first = torch.full((uh.numel(),), hsh.numel(), dtype=torch.int64, device=hsh.device)
        first.scatter_reduce_(0, inv, torch.arange(hsh.numel(), device=hsh.device), "amin")
        if not torch.equal(win, win[first[inv]]):
            yield None, 0
            return
        first += i * kp
        if parts == 1:
            yield [(uh, cnt, first)], hsh.numel()
            continue
        part = uh.view(torch.int64) & (parts - 1)
        yield [(uh[part == k], cnt[part == k], first[part == k]) for k in range(parts)], hsh.numel()


def _merge(train: torch.Tensor, patch_size: int) -> UniqueKeys | None:
    n, c, h, w = train.shape
    p = patch_size
    kp = (h - p + 1) * (w - p + 1)
    total = n * kp
    gen = torch.Generator(device="cpu").manual_seed(0x5EED)
    across = torch.randn(p, generator=gen, dtype=torch.float64).tolist()
    down = torch.randn(c, p, generator=gen, dtype=torch.float64).tolist()
    # Equal windows have equal hashes, hence equal bits: each part (by the hashes' low
    # bits, as good as random) holds whole groups, and is merged on its own.
    parts = 1 << max(0, (-(-total // _PART_WINDOWS) - 1).bit_length())
    small = torch.int32 if total < 2**31 else torch.int64
    by_part: list[list] = [[] for _ in range(parts)]
    for i, (groups, windows) in enumerate(_chunk_groups(train, p, across, down, parts)):
        cancel.check()  # nothing is cached before the merge is whole
        if groups is None:
            return None  # a hash collision: leave these candidates unmerged
        if i == 0 and sum(g[0].numel() for g in groups) > _EARLY_UNIQUE_FRACTION * windows:
            return None
        for k, (uh, cnt, first) in enumerate(groups):
            by_part[k].append((uh, cnt.to(small), first.to(small)))
        if i % _TRIM_EVERY == _TRIM_EVERY - 1:
            _trim_heap()
    firsts, counts, distinct = [], [], 0
    for k in range(parts):
        cancel.check()
        hs, cs, fs = (torch.cat(col) for col in zip(*by_part[k], strict=True))
        by_part[k] = []
        uh, inv = torch.unique(hs, return_inverse=True)
        del hs
        distinct += uh.numel()
        # The exact decision for all the windows: the parts' groups are disjoint.
        if distinct > MAX_UNIQUE_FRACTION * total:
            return None
        cnt = torch.zeros(uh.numel(), dtype=small, device=inv.device).index_add_(0, inv, cs)
        first = torch.full((uh.numel(),), total, dtype=small, device=inv.device)
        first.scatter_reduce_(0, inv, fs, "amin")
        # Each chunk's groups were checked within the chunk; a group met in several
        # chunks is checked here, each chunk's first against the overall first.
        rep = first[inv]
        dup = (rep != fs).nonzero()[:, 0]
        if not _same_windows(train, fs[dup].long(), rep[dup].long(), p):
            return None
        firsts.append(first)
        counts.append(cnt)
        _trim_heap()
    # Number groups by first occurrence, so equal logits of different groups tie-break
    # exactly as over the original candidate order: the firsts marked in a map of all
    # windows (1 byte each) and read back in order a slice at a time, which holds less
    # than sorting them (an int64 index per group).
    mark = torch.zeros(total, dtype=torch.bool, device=train.device)
    for first in firsts:
        mark[first.long()] = True
    origin = torch.cat(
        [
            mark[s : s + _PART_WINDOWS].nonzero()[:, 0].add_(s).to(small)
            for s in range(0, total, _PART_WINDOWS)
        ]
    )
    del mark
    weights = torch.empty(origin.numel(), dtype=train.dtype, device=train.device)
    for first, cnt in zip(firsts, counts, strict=True):
        weights[torch.searchsorted(origin, first)] = cnt.to(train.dtype)
    return UniqueKeys(origin, weights, kp, p)
