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

A ``Sharing`` is made per trajectory (one training set, machine and boundary). Each
step's answer is one pass over the training set that hashes every window and looks it
up among that step's winners (at most one per pixel), counting matches and the images
they lie in: nothing per training window is kept, so memory does not grow with N.
The pass is compiled (numba; a chunked torch version where numba cannot load), and
answers already found at a patch size are remembered, so a step whose winners were all
seen needs no pass.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import fused
from .candidates import build_problems, effective_machine
from .dedup import _hashes as valid_window_hashes

_jit = fused._jit  # compiled where numba loads; plain Python (unused) where not
prange = fused.prange if fused.numba is not None else range
# Images per chunk of the torch version of the pass.
_CHUNK_IMAGES = 512


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


class _Layout:
    """Per machine and patch size: the candidate group of every query pixel, and the
    group whose candidates the window centred at each pixel is (-1: none). Every patch
    machine's groups take disjoint key positions of one key boundary."""

    def __init__(self, machine: str, patch_size: int, boundary: str, h: int, w: int):
        problems = build_problems(machine, patch_size, boundary, h, w, "cpu")
        bounds = {prob.key_boundary for prob in problems}
        if len(bounds) != 1:
            raise AssertionError(f"{machine}: key boundaries {bounds}, the counts take one")
        self.key_boundary = bounds.pop()
        self.query_group = np.full((h, w), -1, dtype=np.int64)
        self.key_group = np.full((h, w), -1, dtype=np.int64)
        first = 0
        for prob in problems:
            qpos, kpos = prob.qpos.numpy(), prob.kpos.numpy()
            ids = first + np.arange(kpos.shape[0])[:, None]
            self.query_group[qpos[..., 0], qpos[..., 1]] = ids
            if (self.key_group[kpos[..., 0], kpos[..., 1]] >= 0).any():
                raise AssertionError(f"{machine}: a key position in two candidate groups")
            self.key_group[kpos[..., 0], kpos[..., 1]] = ids
            first += kpos.shape[0]


def _weights(patch_size: int, channels: int):
    gen = torch.Generator().manual_seed(0x5EED)
    across = torch.randn(patch_size, generator=gen, dtype=torch.float64)
    down = torch.randn(channels, patch_size, generator=gen, dtype=torch.float64)
    return across.numpy(), down.numpy()


# -- the compiled pass --------------------------------------------------------------


@_jit(fastmath=False)
def _image_hashes(img, p, circular, across, down, pad, rows, out):
    """out[u, v] = the hash of the P x P window of image ``img`` [C, H, W] centred at
    (u, v), on 8-bit levels, padded as the key boundary says (zeros: level 0). pad
    [C, H + 2d, W + 2d] and rows [C, H + 2d, W] are scratch. Every window's sum runs
    in the same order (no fast-math reordering), so equal windows get equal bits."""
    c_n, h, w = img.shape
    d = p // 2
    for c in range(c_n):
        for r in range(h + 2 * d):
            for s in range(w + 2 * d):
                rr, ss = r - d, s - d
                if circular:
                    rr, ss = rr % h, ss % w
                elif rr < 0 or rr >= h or ss < 0 or ss >= w:
                    pad[c, r, s] = 0.0
                    continue
                pad[c, r, s] = np.rint((np.float64(img[c, rr, ss]) + 1.0) * 127.5)
        # Loops with the columns innermost vectorise; each number's sum still runs in
        # the same order, term by term.
        for r in range(h + 2 * d):
            for v in range(w):
                rows[c, r, v] = across[0] * pad[c, r, v]
            for j in range(1, p):
                for v in range(w):
                    rows[c, r, v] += across[j] * pad[c, r, v + j]
    for u in range(h):
        for v in range(w):
            out[u, v] = 0.0
        for c in range(c_n):
            for i in range(p):
                for v in range(w):
                    out[u, v] += down[c, i] * rows[c, u + i, v]


@_jit(fastmath=False)
def _slot(key, group, mask):
    x = key * np.int64(-7046029254386353131) + group * np.int64(7135847608233406489)
    return (x ^ (x >> np.int64(29))) & mask


@_jit(fastmath=False)
def _find(table_group, table_key, key, group, mask):
    """The open-addressing table's slot holding (group, key), or of the first gap."""
    k = _slot(key, group, mask)
    while table_group[k] >= 0 and (table_group[k] != group or table_key[k] != key):
        k = (k + 1) & mask
    return k


@_jit(fastmath=False)
def _winner_keys(train, img, ys, xs, p, circular, across, down, keys):
    """keys[i] = the hash bits of window (ys[i], xs[i]) of image img[i] (img ascending)."""
    c_n, h, w = train.shape[1:]
    d = p // 2
    pad = np.empty((c_n, h + 2 * d, w + 2 * d))
    rows = np.empty((c_n, h + 2 * d, w))
    out = np.empty((h, w))
    bits = out.view(np.int64)
    last = -1
    for i in range(img.size):
        if img[i] != last:
            _image_hashes(train[img[i]], p, circular, across, down, pad, rows, out)
            last = img[i]
        keys[i] = bits[ys[i], xs[i]]


@_jit(fastmath=False, parallel=True)
def _count_pass(train, p, circular, across, down, key_group, targets, count, images):
    """count[part, t] and images[part, t]: windows equal to target t (group, key bits)
    among its group's candidates, and the images holding them, over the part's share
    of the training images (each part a contiguous run of images, so the parts' image
    counts add up)."""
    n, c_n, h, w = train.shape
    d = p // 2
    parts, t_n = count.shape
    size = 4
    while size < 4 * t_n:
        size *= 2
    mask = np.int64(size - 1)
    table_group = np.full(size, -1, np.int64)
    table_key = np.zeros(size, np.int64)
    table_t = np.zeros(size, np.int64)
    for t in range(t_n):
        k = _find(table_group, table_key, targets[t, 1], targets[t, 0], mask)
        table_group[k], table_key[k], table_t[k] = targets[t, 0], targets[t, 1], t
    for part in prange(parts):
        pad = np.empty((c_n, h + 2 * d, w + 2 * d))
        rows = np.empty((c_n, h + 2 * d, w))
        out = np.empty((h, w))
        bits = out.view(np.int64)
        last = np.full(t_n, -1, np.int64)
        for i in range(part * n // parts, (part + 1) * n // parts):
            _image_hashes(train[i], p, circular, across, down, pad, rows, out)
            for u in range(h):
                for v in range(w):
                    g = key_group[u, v]
                    if g < 0:
                        continue
                    k = _find(table_group, table_key, bits[u, v], g, mask)
                    if table_group[k] < 0:
                        continue
                    t = table_t[k]
                    count[part, t] += 1
                    if last[t] != i:
                        last[t] = i
                        images[part, t] += 1


# -- the torch version (no numba) ----------------------------------------------------


def _listed(weights):
    return weights[0].tolist(), weights[1].tolist()


def _torch_keys(train, layout, p, weights, img, ys, xs) -> np.ndarray:
    weights = _listed(weights)
    keys = np.empty(img.size, dtype=np.int64)
    for n in np.unique(img):
        at = img == n
        table = centred_hashes(levels(train[n : n + 1]), p, layout.key_boundary, weights)
        keys[at] = table[0].view(np.int64)[ys[at], xs[at]]
    return keys


def _torch_counts(train, layout, p, weights, targets) -> tuple[np.ndarray, np.ndarray]:
    """count, images per target (group, key bits), chunk by chunk of images."""
    weights = _listed(weights)
    count = np.zeros(len(targets), dtype=np.int64)
    images = np.zeros(len(targets), dtype=np.int64)
    order = np.lexsort((targets[:, 1], targets[:, 0]))
    sorted_targets = targets[order]
    at = layout.key_group >= 0
    groups = layout.key_group[at]
    for i in range(0, len(train), _CHUNK_IMAGES):
        chunk = levels(train[i : i + _CHUNK_IMAGES])
        keys = centred_hashes(chunk, p, layout.key_boundary, weights).view(np.int64)[:, at]
        grp = np.broadcast_to(groups, keys.shape)
        # each window's place among the sorted targets, by group then key
        lo = np.searchsorted(sorted_targets[:, 0], grp, side="left")
        hi = np.searchsorted(sorted_targets[:, 0], grp, side="right")
        hit_img, hit_t = [], []
        for g in np.unique(grp[lo < hi]):
            sel = grp == g
            span = sorted_targets[lo[sel][0] : hi[sel][0], 1]
            pos = np.searchsorted(span, keys[sel])
            ok = pos < len(span)
            ok[ok] = span[pos[ok]] == keys[sel][ok]
            hit_t.append(order[lo[sel][0] + pos[ok]])
            hit_img.append(np.nonzero(sel)[0][ok])
        if not hit_t:
            continue
        t, n = np.concatenate(hit_t), np.concatenate(hit_img)
        count += np.bincount(t, minlength=len(targets))
        seen = np.unique(t * len(chunk) + n) // len(chunk)
        images += np.bincount(seen, minlength=len(targets))
    return count, images


class Sharing:
    """Counts of patches identical to each pixel's winner, for one trajectory's
    training images [N, C, H, W], machine and boundary."""

    def __init__(self, train: torch.Tensor, machine: str, boundary: str):
        self.train, self.machine, self.boundary = train, machine, boundary
        self._layouts: dict[int, _Layout] = {}
        # per patch size: (group, key bits) -> (count, images), answers found so far
        self._known: dict[int, dict[tuple[int, int], tuple[int, int]]] = {}
        self._images: np.ndarray | None = None
        self.passes = 0  # passes over the training set made (tests read it)

    def counts(self, source_index, source_yx, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(candidates identical to the winner, training images holding it), each
        int32 [B, H, W] and at least 1, for a machine output's winners."""
        src = np.asarray(_np(source_index), dtype=np.int64)
        yx = np.asarray(_np(source_yx), dtype=np.int64)
        if self.machine == "ideal":
            return self._whole_images(src)
        b, h, w = src.shape
        machine = effective_machine(self.machine, patch_size, h, w)
        key = patch_size if machine != "ls" else -patch_size
        if key not in self._layouts:
            self._layouts[key] = _Layout(machine, patch_size, self.boundary, h, w)
            self._known[key] = {}
        layout, known = self._layouts[key], self._known[key]
        group = np.broadcast_to(layout.query_group, (b, h, w)).reshape(-1)
        img = src.reshape(-1)
        ys, xs = yx[..., 0].reshape(-1), yx[..., 1].reshape(-1)
        if not np.array_equal(layout.key_group[ys, xs], group):
            raise AssertionError("a winning patch is not among its pixel's candidates")
        train = self._cpu()
        weights = _weights(patch_size, train.shape[1])
        order = np.argsort(img, kind="stable")
        keys = np.empty(img.size, dtype=np.int64)
        if self._compiled():
            sorted_keys = np.empty(img.size, dtype=np.int64)
            args = (patch_size, layout.key_boundary == "circular", *weights)
            _winner_keys(train.numpy(), img[order], ys[order], xs[order], *args, sorted_keys)
            keys[order] = sorted_keys
        else:
            keys = _torch_keys(train, layout, patch_size, weights, img, ys, xs)
        pairs = np.stack([group, keys], 1)
        new = np.unique(pairs, axis=0)
        new = new[[(int(g), int(k)) not in known for g, k in new]]
        if len(new):
            self._count(train, layout, patch_size, weights, new, known)
        found = np.array([known[(int(g), int(k))] for g, k in pairs], dtype=np.int64)
        return (found[:, 0].astype(np.int32).reshape(b, h, w),
                found[:, 1].astype(np.int32).reshape(b, h, w))  # fmt: skip

    def _count(self, train, layout, p, weights, targets, known) -> None:
        self.passes += 1
        if self._compiled():
            parts = max(1, min(torch.get_num_threads(), len(train)))
            count = np.zeros((parts, len(targets)), dtype=np.int64)
            images = np.zeros_like(count)
            circular = layout.key_boundary == "circular"
            with fused.LAUNCH:
                fused.set_threads(parts)
                _count_pass(train.numpy(), p, circular, *weights, layout.key_group, targets,
                            count, images)  # fmt: skip
            count, images = count.sum(0), images.sum(0)
        else:
            count, images = _torch_counts(train, layout, p, weights, targets)
        for (g, k), c, i in zip(targets.tolist(), count.tolist(), images.tolist(), strict=True):
            known[(g, k)] = (c, i)

    def _cpu(self) -> torch.Tensor:
        """The training images on the CPU (a view where they are there already)."""
        return self.train.detach().cpu()

    @staticmethod
    def _compiled() -> bool:
        """Whether the compiled pass runs: numba loads and its routes compile (a numba
        that cannot compile the machines' pass is taken not to compile this one)."""
        return not FORCE_TORCH and fused.numba is not None and fused.available()

    def _whole_images(self, src: np.ndarray):
        """The ideal machine's candidates are whole images; exact copies are identical.
        Images are told apart by a random linear hash of their levels in wrapping int64
        arithmetic (exact, so equal images get equal hashes in any order of summing;
        different ones share a hash with a chance of about 2^-63)."""
        if self._images is None:
            train = self._cpu()
            weights = np.random.default_rng(0x5EED).integers(
                -(2**62), 2**62, train[0].numel(), dtype=np.int64
            )
            hashes = np.empty(len(train), dtype=np.int64)
            for i in range(0, len(train), _CHUNK_IMAGES):
                lv = levels(train[i : i + _CHUNK_IMAGES]).numpy().astype(np.int64)
                hashes[i : i + len(lv)] = (lv.reshape(len(lv), -1) * weights).sum(1)
            _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
            self._images = counts[inverse.reshape(-1)].astype(np.int32)
        out = self._images[src]
        return out, out.copy()


# Tests set this to run the torch version where numba is installed.
FORCE_TORCH = False


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
