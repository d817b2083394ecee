"""The compiled fold (foldc.c): logits product, exp and softmax sums in one loop.

The numba pass (fused.py) still takes its logits from a matrix product, which writes
every logit to memory and reads it back; with patches of 9 to 50 numbers the product
alone runs at half the machine's matmul rate and the pass adds as much again. foldc.c
keeps sixteen queries (eight with AVX2) in the lanes of a vector register, two such
blocks at a time, and walks the keys eight at a time: each logit is a run of broadcast
multiply-adds, and its exp, the running winner and the sums follow while it is still in
a register. Nothing per logit is ever stored.

The library is an optional extension module built by setup.py (a C compiler at install
time); it runs where the CPU has AVX2 and FMA (AVX-512 where it has that). Elsewhere,
or with CCDM_NO_NATIVE=1, the machines take the numba route, then the torch route.
"""

from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor

from .fused import EXP2_POLY, switched_off


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
    ]


# The exp's polynomial, as the kernel takes it (FoldArgs.poly).
POLY = (ctypes.c_float * 6)(*EXP2_POLY)
# Queries are padded to a multiple of this (the widest lane count).
LANES = 16
# Values per key the kernel averages (foldc.c: MAXC).
MAX_VALUES = 8
# Longest patch (C * P * P) the kernel takes (P = 9 grey, P = 5 colour); for longer ones
# the tensor library's product with numba's pass is faster. With the register tile of
# 2 x 16 queries by 8 keys, alternating in one process (bench/native_ab.py, random and
# MNIST, N = 1,000, 2026-11-29, session 9), numba's route took 1.5-1.65x the kernel's
# time at P = 3, 1.0-1.4x at P = 5, 1.04-1.87x at P = 7, 0.96-1.28x at P = 9 (ELS 1.22,
# 1.28; bbELS 0.96, 1.02), 1.10-1.15x at colour P = 5, but 0.84-1.09x at P = 11 and
# 0.64-0.82x at P = 15. With the block copied by vector moves (later that day): P = 9
# 1.29 / 1.20x, P = 11 1.14 / 0.85x (ELS / bbELS). (With one block of 16 queries,
# session 8: P = 7 was a wash.)
MAX_DIM = 81
# Keys per block: the block's patches stay in L2 while every query block reads them.
_BLOCK_FLOATS = 1 << 16

_lib = None
_isa = 0
reason = ""


def _load() -> None:
    global _lib, _isa, reason
    if switched_off("CCDM_NO_NATIVE"):
        reason = "CCDM_NO_NATIVE"
        return
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
    _isa = lib.ccdm_fold_isa()
    if _isa == 0:
        reason = "it has code only for x86-64 CPUs with AVX2 or AVX-512"
        return
    _lib = lib


_load()
ENABLED = _lib is not None


def available() -> bool:
    return ENABLED


def isa() -> str:
    return {2: "AVX-512", 1: "AVX2"}.get(_isa, "none")


# One pool per thread count, never shut down: a machine in the app's worker and an
# export may fold at once, each with its own count.
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="ccdm-fold")
        return _pools[threads]


def key_block(d: int, cv: int) -> int:
    kb = max(LANES, _BLOCK_FLOATS // (d + 2 + cv))
    return kb - kb % LANES


def fold(groups: list[FoldArgs], mpad: int, threads: int) -> None:
    """Run the kernel for every group, the query lanes of each split over ``threads``.

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
        failed = [_lib.ccdm_fold(ctypes.byref(args), q0, q1, _isa) for args, q0, q1 in items]
    else:
        pool = _executor(threads)
        futures = [
            pool.submit(_lib.ccdm_fold, ctypes.byref(args), q0, q1, _isa) for args, q0, q1 in items
        ]
        failed = [f.result() for f in futures]
    if any(failed):
        raise MemoryError("the compiled fold could not allocate its block of keys")


def wsum_block() -> int:
    """Training images per block of the window-sum kernel (its lanes)."""
    return _lib.ccdm_wsum_block(_isa)


def wsum(per_thread: list[WsumArgs]) -> None:
    """Run the window-sum kernel, thread t of len(per_thread) with the t-th arguments
    (each holds its own state)."""
    threads = len(per_thread)
    if threads == 1:
        failed = [_lib.ccdm_wsum(ctypes.byref(per_thread[0]), 0, 1, _isa)]
    else:
        pool = _executor(threads)
        futures = [
            pool.submit(_lib.ccdm_wsum, ctypes.byref(a), t, threads, _isa)
            for t, a in enumerate(per_thread)
        ]
        failed = [f.result() for f in futures]
    if any(failed):
        raise MemoryError("the window-sum kernel could not allocate its scratch memory")
