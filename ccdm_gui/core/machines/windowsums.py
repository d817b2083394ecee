"""Long patches on a CPU: cross-terms as window sums of shifted products.

Where every query of a rectangle competes over every key of a rectangle (ELS, bbELS's
interior and edge strips), a query centred at (i, j) and a key centred at (i + du, j +
dv) share the offset (du, dv) with many other pairs, and their cross-term is the sum,
over the query's window, of the noisy image times the training image shifted by (du,
dv). Summing that product over the P rows of a column (G), then over P neighbouring
columns, slid along the row (one add and one subtract per step), costs a logit about
C P (1 + (P - 1) / width) + 2 operations where the patch dot product takes C P^2
multiply-adds: at P = 15 on 32 x 32 images about 30 against 225. (Session 9 tried
shifts with query columns in the lanes: at one shift only 55-67% of them had a key,
and it lost to the patch routes. Here the lanes hold training images, all of them
always in use.)

Training images go in blocks of one vector (16 with AVX-512, [C, H, W, 16]), so every
inner loop runs over whole vectors whatever the rectangles' shapes. The kernel is C
(wsum_body.h, in the compiled fold's library): numba did not keep these short loops in
vectors (31 ns a logit). Each thread folds its blocks into a float32 softmax state per
query of the row and lane (lazy shift as in streaming.py: it moves only when a logit
passes it by 2^20), merged into float64 per query at the end of every row. Logits are
in base 2.
"""

from __future__ import annotations

import ctypes
import math
import os

import numpy as np
import torch

from . import native

# From this many numbers a patch (C * P * P) on, window sums beat the streamed route.
# Streamed time over window-sum time, alternating in one process, N = 1,000, ELS and
# bbELS, random then MNIST (`bench/windowsums.py --p 3 5 7 9 11 15`, 2026-11-29 19:03):
# P = 3 0.27-0.76, P = 5 0.52-0.97, P = 7 1.24, 1.24, 1.09, 1.11 (19:06 with 5 rounds
# 1.16, 1.27, 1.07, 1.41; 18:29, on the kernel before its last change, 0.96-1.10),
# P = 9 1.28-1.46, P = 11 1.60-2.44, P = 15 2.02-2.30. Colour (C = 3, random, 32 x 32,
# /tmp script alternating the same way): P = 5 (75 numbers) 1.13 and 1.18, P = 7 1.73
# and 1.69, P = 9 1.89 and 1.96.
MIN_NUMBERS = 49
ENABLED = os.environ.get("CCDM_NO_WINDOWSUMS", "") not in ("1", "true")
_LOG2E = 1.0 / math.log(2.0)
_FLOOR = -80.0
_REBASE = 20.0


def applies(x: torch.Tensor, patch_size: int) -> bool:
    """Whether this route computes the patch machine for x (a CPU float32 batch)."""
    return (
        ENABLED
        and x.shape[1] * patch_size * patch_size >= MIN_NUMBERS
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and native.available()
    )


def min_patch(channels: int = 1) -> int:
    """The shortest patch size the route takes for images of this many channels."""
    p = 1
    while channels * p * p < MIN_NUMBERS:
        p += 2
    return p


def rects_of(qpos: torch.Tensor, kpos: torch.Tensor) -> tuple[int, ...] | None:
    """(qi0, qi1, qj0, qj1, ku0, ku1, kv0, kv1) when the group's queries and keys each
    fill a rectangle, else None."""
    box = []
    for pos in (qpos, kpos):
        lo = pos.min(0).values.tolist()
        hi = (pos.max(0).values + 1).tolist()
        if (hi[0] - lo[0]) * (hi[1] - lo[1]) != len(torch.unique(pos, dim=0)):
            return None
        box += [lo[0], hi[0], lo[1], hi[1]]
    return tuple(box)


def fold(
    xp: np.ndarray, train: np.ndarray, rects: list[tuple[int, ...]], p: int, a: float, v: float
):
    """Softmax results for every query of ``rects`` (each a rects_of tuple).

    xp [B, C, Hq + 2d, Wq + 2d] float32, contiguous: the noisy images padded by d;
    train [N, C, H, W] float32 at any strides. Returns per image and query (row-major
    within each rectangle, rectangles in order) the float64 sums s, u (base 2), acc
    [B, Q, C], the best logit over the shift (base 2), the winner's image and its key's
    index (row-major) in its rectangle.
    """
    b, c = xp.shape[:2]
    # The kernel computes columns in runs (wsum_body.h: WQB), some past the last needed.
    xp = np.ascontiguousarray(np.pad(xp, ((0, 0), (0, 0), (0, 0), (0, 8))))
    table = []
    q = 0
    for r in rects:
        table.append((*r, q))
        q += (r[1] - r[0]) * (r[3] - r[2])
    table = np.ascontiguousarray(table, np.int64)
    nthreads = max(1, min(torch.get_num_threads(), -(-train.shape[0] // native.wsum_block())))
    st = (
        np.full((nthreads, b, q), -np.inf),
        np.zeros((nthreads, b, q)),
        np.zeros((nthreads, b, q)),
        np.zeros((nthreads, b, q, c)),
        np.full((nthreads, b, q), -np.inf, np.float32),
        np.zeros((nthreads, b, q), np.int64),
        np.zeros((nthreads, b, q), np.int64),
    )
    item = train.itemsize
    args = []
    for t in range(nthreads):
        args.append(
            native.WsumArgs(
                *train.shape, (ctypes.c_int64 * 4)(*(s // item for s in train.strides)),
                train.ctypes.data, b, xp.shape[2], xp.shape[3], xp.ctypes.data,
                p, len(rects), q, table.ctypes.data,
                _LOG2E * a / v, _LOG2E * a * a / (2.0 * v), _FLOOR, _REBASE, native.POLY,
                *(arr[t].ctypes.data for arr in st),
            )
        )  # fmt: skip
    native.wsum(args)
    return _merge_threads(*st)


def _merge_threads(m, s, u, acc, best, img, key):
    # Every thread took at least one block of images (fold caps the thread count), so
    # every shift m is a logit seen, finite.
    top = m.max(0)
    sc = np.exp2(m - top)
    u_all = (sc * (u + (m - top) * s)).sum(0)
    s_all = (sc * s).sum(0)
    acc_all = (sc[..., None] * acc).sum(0)
    win = best.argmax(0)[None]
    best_all = np.take_along_axis(best, win, 0)[0].astype(np.float64) - top
    img_all = np.take_along_axis(img, win, 0)[0]
    key_all = np.take_along_axis(key, win, 0)[0]
    return s_all, u_all, acc_all, best_all, img_all, key_all
