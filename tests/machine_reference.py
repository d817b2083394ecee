"""Slow, literal float64 score machines: the yardstick for ccdm_gui.core.machines.

Every pixel gets its candidate list built by hand from the table in docs/design.md (The score
machines), then a plain softmax over it. No streaming, no shared groups, no matrix tricks.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _pad(img: np.ndarray, d: int, boundary: str) -> np.ndarray:
    """[C, H, W] padded by d on each side; np.pad's wrap also copes with d > H."""
    if d == 0:
        return img
    mode = "wrap" if boundary == "circular" else "constant"
    return np.pad(img, ((0, 0), (d, d), (d, d)), mode=mode)


def _window(padded: np.ndarray, r: int, c: int, p: int) -> np.ndarray:
    """The P x P window centred on (r, c) of an image padded by P // 2."""
    return padded[:, r : r + p, c : c + p]


def candidates(train: np.ndarray, machine: str, p: int, boundary: str, r: int, c: int):
    """List of (train index, (row, col) centre, patch [C, P, P]) for pixel (r, c)."""
    n, _, h, w = train.shape
    d = p // 2
    if machine in ("els", "bbels") and (p >= h or p >= w):
        machine = "ls"
    pads = [_pad(train[i], d, boundary if machine == "ls" else "zeros") for i in range(n)]
    out = []
    if machine == "ls":
        for i in range(n):
            out.append((i, (r, c), _window(pads[i], r, c, p)))
        return out
    interior_r = range(d, h - d)
    interior_c = range(d, w - d)
    if machine == "els" or (r in interior_r and c in interior_c):
        centres = [(y, x) for y in interior_r for x in interior_c]
    elif r in interior_r:  # left or right edge: same column, any interior row
        centres = [(y, c) for y in interior_r]
    elif c in interior_c:  # top or bottom edge: same row, any interior column
        centres = [(r, x) for x in interior_c]
    else:  # corner
        centres = [(r, c)]
    for i in range(n):
        for y, x in centres:
            out.append((i, (y, x), _window(pads[i], y, x, p)))
    return out


def reference_denoise(x, abar, train, machine, p, boundary):
    """Returns dict of numpy arrays x0 [B,C,H,W], source_index, source_yx, weight,
    entropy, and top2_gap [B,H,W] (difference of the two largest weights)."""
    x = np.asarray(x, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    b, ch, h, w = x.shape
    a, v = np.sqrt(abar), 1.0 - abar
    res = {
        "x0": np.zeros((b, ch, h, w)),
        "source_index": np.zeros((b, h, w), dtype=np.int64),
        "source_yx": np.zeros((b, h, w, 2), dtype=np.int64),
        "weight": np.zeros((b, h, w)),
        "entropy": np.zeros((b, h, w)),
        "top2_gap": np.zeros((b, h, w)),
    }
    if machine == "ideal":
        for bi in range(b):
            logits = np.array([-np.sum((x[bi] - a * t) ** 2) / (2 * v) for t in train])
            wts = _softmax(logits)
            x0 = np.tensordot(wts, train, axes=1)
            win = int(np.argmax(wts))
            res["x0"][bi] = x0
            res["source_index"][bi] = win
            res["source_yx"][bi] = np.stack(np.meshgrid(range(h), range(w), indexing="ij"), -1)
            res["weight"][bi] = wts[win]
            res["entropy"][bi] = _entropy(wts)
            res["top2_gap"][bi] = _gap(wts)
        return res
    d = p // 2
    qboundary = boundary
    for r in range(h):
        for c in range(w):
            cands = candidates(train, machine, p, boundary, r, c)
            patches = np.stack([cp for _, _, cp in cands])
            for bi in range(b):
                q = _window(_pad(x[bi], d, qboundary), r, c, p)
                logits = -np.sum((q[None] - a * patches) ** 2, axis=(1, 2, 3)) / (2 * v)
                wts = _softmax(logits)
                win = int(np.argmax(wts))
                res["x0"][bi, :, r, c] = np.tensordot(wts, patches[:, :, d, d], axes=1)
                res["source_index"][bi, r, c] = cands[win][0]
                res["source_yx"][bi, r, c] = cands[win][1]
                res["weight"][bi, r, c] = wts[win]
                res["entropy"][bi, r, c] = _entropy(wts)
                res["top2_gap"][bi, r, c] = _gap(wts)
    return res


def reference_top(x, abar, train, machine, p, boundary, pixel, k):
    """Top-k (index, centre, weight) of one pixel of one image [C, H, W]."""
    x = np.asarray(x, dtype=np.float64)
    train = np.asarray(train, dtype=np.float64)
    a, v = np.sqrt(abar), 1.0 - abar
    r, c = pixel
    if machine == "ideal":
        logits = np.array([-np.sum((x - a * t) ** 2) / (2 * v) for t in train])
        cands = [(i, (r, c)) for i in range(len(train))]
    else:
        d = p // 2
        q = _window(_pad(x, d, boundary), r, c, p)
        full = candidates(train, machine, p, boundary, r, c)
        logits = np.array([-np.sum((q - a * cp) ** 2) / (2 * v) for _, _, cp in full])
        cands = [(i, yx) for i, yx, _ in full]
    wts = _softmax(logits)
    order = np.argsort(-wts, kind="stable")[:k]
    return [(cands[j][0], cands[j][1], float(wts[j])) for j in order]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _entropy(wts: np.ndarray) -> float:
    nz = wts[wts > 0]
    return float(-np.sum(nz * np.log(nz)))


def _gap(wts: np.ndarray) -> float:
    if len(wts) < 2:
        return 1.0
    top = np.sort(wts)[-2:]
    return float(top[1] - top[0])


def random_case(seed: int, c: int, h: int, w: int, n: int, b: int, ab: float):
    """(x [b, c, h, w], train [n, c, h, w]): uniform training images in [-1, 1] and noisy
    images at abar = ab near some of them, so that some weights peak and others stay flat."""
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(n, c, h, w, generator=g) * 2 - 1
    x0 = train[torch.randint(0, n, (b,), generator=g)]
    x = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * torch.randn(b, c, h, w, generator=g)
    return x, train


def assert_matches(out, ref: dict, tol: float = 1e-4) -> None:
    """A machine's output against reference_denoise's: x0, weight and entropy within tol,
    and the winner wherever the top two weights differ by more than 1e-3 (near-ties may
    break either way under float32 rounding)."""
    np.testing.assert_allclose(out.x0.double().numpy(), ref["x0"], atol=tol, rtol=0)
    np.testing.assert_allclose(out.weight.double().numpy(), ref["weight"], atol=tol, rtol=0)
    np.testing.assert_allclose(out.entropy.double().numpy(), ref["entropy"], atol=tol, rtol=0)
    clear = ref["top2_gap"] > 1e-3
    assert np.array_equal(out.source_index.numpy()[clear], ref["source_index"][clear])
    assert np.array_equal(out.source_yx.numpy()[clear], ref["source_yx"][clear])
