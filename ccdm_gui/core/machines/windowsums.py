"""Long patches on a CPU: cross-terms as window sums of shifted products.

Where every query of a rectangle competes over every key of a rectangle (ELS, bbELS's
interior and edge strips), a query centred at (i, j) and a key centred at (i + du, j +
dv) share the offset (du, dv) with many other pairs, and their cross-term is the sum,
over the query's window, of the noisy image times the training image shifted by (du,
dv). Summing that product over the P rows of a column (G), then over P neighbouring
columns, slid along the row (one add and one subtract per step), costs a logit about
C P (1 + (P - 1) / width) + 2 operations where the patch dot product takes C P^2
multiply-adds: at P = 15 on 32 x 32 images about 30 against 225.

Training images go in blocks of one vector (16 with AVX-512, [C, H, W, 16]), so every
inner loop runs over whole vectors whatever the rectangles' shapes, and every lane is
always in use (query columns in the lanes would leave a third or more of them without a
key at one shift). The kernel is C (wsum_body.h, in the compiled fold's library): numba did
not keep these short loops in vectors (31 ns a logit). Each thread adds its blocks to a
float32 softmax state per query of the row and lane (lazy shift as in streaming.py: it
moves only when a logit passes it by limits.REBASE), merged into float64 per query at
the end of every row. Logits are in base 2. routes.py decides which patches take this.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from .. import cancel
from . import native
from .limits import FLOOR, LOG2E, REBASE

# Training images per call of the kernel (rounded to whole blocks for every thread):
# about half a second of a step at P = 7 on 2 cores.
IMAGES_PER_CALL = 1024


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


def softmax_sums(
    xp: np.ndarray,
    train: np.ndarray,
    rects: list[tuple[int, ...]],
    p: int,
    a: float,
    v: float,
    isa: int,
):
    """Softmax results for every query of ``rects`` (each a rects_of tuple), by the
    kernel's ``isa`` code (native.AVX512 or native.AVX2).

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
    nthreads = max(1, min(torch.get_num_threads(), -(-train.shape[0] // native.wsum_block(isa))))
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
                LOG2E * a / v, LOG2E * a * a / (2.0 * v), FLOOR, REBASE, native.POLY,
                *(arr[t].ctypes.data for arr in st), 0,
            )
        )  # fmt: skip
    # A call per run of images, each thread's blocks where they would fall in one call:
    # between calls a cancelled comparison stops (a step at N = 60,000 takes half a minute).
    n = train.shape[0]
    run = native.wsum_block(isa) * nthreads
    run *= max(1, IMAGES_PER_CALL // run)
    for first in range(0, n, run):
        cancel.check()
        for arg in args:
            arg.first, arg.n = first, min(n, first + run)
        native.wsum(args, isa)
    return _merge_threads(*st)


def _merge_threads(m, s, u, acc, best, img, key):
    # Every thread took at least one block of images (softmax_sums caps the thread count), so
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
