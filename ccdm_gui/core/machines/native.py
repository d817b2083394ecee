"""The compiled fold (foldc.c): logits product, exp and softmax sums in one loop.

A matrix product writes every logit to memory and a pass reads it back; with patches of
9 to 81 numbers the product runs at half the machine's matmul rate and the pass costs as
much again. foldc.c keeps sixteen queries (eight with AVX2) in the lanes of a vector
register, two such blocks at a time, and walks the keys eight at a time: each logit is a
run of broadcast multiply-adds, and its exp, the running winner and the sums follow
while it is still in a register. Nothing per logit is ever stored. The same library
holds the window-sum kernel (wsum_body.h, windowsums.py).

The library is an optional extension module built by setup.py (a C compiler at install
time); it has code for x86-64 CPUs with AVX2 and FMA, and with AVX-512. Which of the two
a call runs is the route's (routes.Route.isa); routes.py decides where it runs at all.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor

from .fused import EXP2_POLY


class FoldArgs(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int64) for name in ("d", "ks", "cv", "vs", "mpad", "t_n", "kblock")),
        *((name, ctypes.c_void_p) for name in ("qt", "keys", "bias", "vals", "counts")),
        *((name, ctypes.c_float) for name in ("bias_scale", "floor_", "rebase", "negligible")),
        *((name, ctypes.c_void_p) for name in ("shift", "best", "best_j", "changed")),
        *((name, ctypes.c_void_p) for name in ("s", "u", "acc")),
        ("poly", ctypes.c_float * 6),
    ]


class WsumArgs(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_int64) for name in ("n", "c", "h", "w")),
        ("ts", ctypes.c_int64 * 4),
        ("train", ctypes.c_void_p),
        *((name, ctypes.c_int64) for name in ("b", "hq", "wq")),
        ("xp", ctypes.c_void_p),
        *((name, ctypes.c_int64) for name in ("p", "nrect", "q")),
        ("rects", ctypes.c_void_p),
        *((name, ctypes.c_float) for name in ("alpha", "beta", "floor_", "rebase")),
        ("poly", ctypes.c_float * 6),
        *((name, ctypes.c_void_p) for name in ("m", "s", "u", "acc", "best", "img", "key")),
        ("first", ctypes.c_int64),  # a call takes images first..n-1
    ]


# The exp's polynomial, as the kernel takes it (FoldArgs.poly).
POLY = (ctypes.c_float * 6)(*EXP2_POLY)
# Queries are padded to a multiple of this (the widest lane count).
LANES = 16
# The code a call runs (foldc.c: ccdm_fold_isa).
AVX512, AVX2 = 2, 1
# Keys per block: the block's patches stay in L2 while every query block reads them.
BLOCK_FLOATS = 1 << 16

_lib = None
_best_isa = 0
# Why the library is not used, for self-test and the benchmark ("" while it is).
reason = ""


def _load() -> None:
    global _lib, _best_isa, reason
    try:
        from . import _foldc  # noqa: F401 - the module only carries the library
    except ImportError:
        reason = "not built when ccdm-gui was installed (no C compiler then?)"
        return
    try:
        lib = ctypes.CDLL(_foldc.__file__)
    except OSError as exc:
        reason = f"{_foldc.__file__} does not load ({exc})"
        return
    lib.ccdm_fold_isa.restype = ctypes.c_int
    lib.ccdm_fold.restype = ctypes.c_int
    lib.ccdm_fold.argtypes = [
        ctypes.POINTER(FoldArgs), ctypes.c_int64, ctypes.c_int64, ctypes.c_int
    ]  # fmt: skip
    lib.ccdm_wsum.restype = ctypes.c_int
    lib.ccdm_wsum.argtypes = [
        ctypes.POINTER(WsumArgs), ctypes.c_int64, ctypes.c_int64, ctypes.c_int
    ]  # fmt: skip
    lib.ccdm_wsum_block.restype = ctypes.c_int
    lib.ccdm_wsum_block.argtypes = [ctypes.c_int]
    _best_isa = lib.ccdm_fold_isa()
    if _best_isa == 0:
        reason = "it has code only for x86-64 CPUs with AVX2 or AVX-512"
        return
    reason = ""
    _lib = lib


_load()


def available() -> bool:
    """Whether the library loaded and this CPU runs one of its codes."""
    return _lib is not None


def best_isa() -> int:
    """The widest code this CPU runs: AVX512, AVX2, or 0 (none, or no library)."""
    return _best_isa if _lib is not None else 0


def isa_name(isa: int) -> str:
    return {AVX512: "AVX-512", AVX2: "AVX2"}.get(isa, "none")


# One pool per thread count, never shut down: a machine in the app's worker and an
# export may run the kernels at once, each with its own count.
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="ccdm-fold")
        return _pools[threads]


def _results(futures: list) -> list:
    """Each work item's result. The kernels write through raw pointers into arrays this
    thread owns: if Ctrl+C (KeyboardInterrupt) or any error ends the wait early, the
    items still running must finish before the arrays can be freed (else the heap is
    corrupted and the process aborts), so the items not started are cancelled, the rest
    waited for, and the interruption raised after."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        while True:
            try:
                concurrent.futures.wait(futures)
                break
            except KeyboardInterrupt:  # a second Ctrl+C: still wait
                continue
        raise


def key_block(d: int, cv: int, block_floats: int = BLOCK_FLOATS) -> int:
    kb = max(LANES, block_floats // (d + 2 + cv))
    return kb - kb % LANES


def fold(groups: list[FoldArgs], mpad: int, threads: int, isa: int) -> None:
    """Run the kernel's ``isa`` code for every group, the query lanes of each split over
    ``threads``.

    Each work item is a run of whole lane blocks of one group; items never share a
    query, so they run at once (ctypes lets go of the GIL for the call)."""
    lanes = mpad // LANES
    per = max(1, -(-lanes * len(groups) // threads))
    items = []
    for args in groups:
        for b0 in range(0, lanes, per):
            b1 = min(lanes, b0 + per)
            items.append((args, b0 * LANES, b1 * LANES))
    if len(items) == 1 or threads == 1:
        failed = [_lib.ccdm_fold(ctypes.byref(args), q0, q1, isa) for args, q0, q1 in items]
    else:
        pool = _executor(threads)
        futures = [
            pool.submit(_lib.ccdm_fold, ctypes.byref(args), q0, q1, isa) for args, q0, q1 in items
        ]
        failed = _results(futures)
    if any(failed):
        raise MemoryError("the compiled fold could not allocate its block of keys")


def wsum_block(isa: int) -> int:
    """Training images per block of the window-sum kernel's ``isa`` code (its lanes)."""
    return _lib.ccdm_wsum_block(isa)


def wsum(per_thread: list[WsumArgs], isa: int) -> None:
    """Run the window-sum kernel's ``isa`` code, thread t of len(per_thread) with the t-th
    arguments (each holds its own state)."""
    threads = len(per_thread)
    if threads == 1:
        failed = [_lib.ccdm_wsum(ctypes.byref(per_thread[0]), 0, 1, isa)]
    else:
        pool = _executor(threads)
        futures = [
            pool.submit(_lib.ccdm_wsum, ctypes.byref(a), t, threads, isa)
            for t, a in enumerate(per_thread)
        ]
        failed = _results(futures)
    if any(failed):
        raise MemoryError("the window-sum kernel could not allocate its scratch memory")
