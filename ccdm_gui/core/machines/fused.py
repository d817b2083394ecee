"""The numba route's compiled pass over a CPU tile of logits: shift, argmax, exp, entropy
and values (stream_numba.py feeds it).

The torch route reads a tile of logits five or six times (max, clamp, exp, entropy
product, its sum, the value product), and on a CPU each pass costs about as much as the
exp itself. Here numba compiles a loop that reads each row once while it is in L1: the
exp is a polynomial the compiler vectorises (no vector exp library is available to it),
the sums are kept per row and added to float64 state per tile.

Logits here are in base 2 (the caller scales them by log2 e inside the matrix
product), so the exp is 2^x: an integer part put into the exponent bits and a short
polynomial, with no extra range reduction. The row maximum is taken in the same
loop over rows (as integers, which vectorise; see _row_max), so the row is in L1 when
the exp reads it.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from .limits import FLOOR32, NEGLIGIBLE32, REBASE32


def _frozen_cache_dir() -> str:
    """Where a frozen app keeps numba's compiled code: the user's cache folder. (Its
    modules' paths are relative, and numba would otherwise write beside any source
    checkout that happens to be the working folder.)"""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return str(base / "ccdm-gui" / "numba")


if getattr(sys, "frozen", False):
    os.environ.setdefault("NUMBA_CACHE_DIR", _frozen_cache_dir())


def _wide_vectors() -> None:
    """Let numba use 512-bit vectors where the CPU has AVX-512.

    LLVM tunes Skylake-X and its successors to prefer 256-bit vectors (wide ones lower
    the clock, which costs mixed scalar code more than it gains); the tile pass is pure
    vector arithmetic, and with 512-bit vectors the eight benchmark steps ran 1.23x
    faster in sum (ELS 1.35x; bench/machines.py alternating with LLVM's choice, three
    rounds, docs/performance.md). numba reads its features once, at import, so this
    runs before the import; a user's own NUMBA_CPU_NAME or NUMBA_CPU_FEATURES wins
    (NUMBA_CPU_FEATURES set to llvmlite.binding.get_host_cpu_features().flatten() is
    LLVM's choice, to compare).
    """
    keep = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
    if "numba" in sys.modules or any(os.environ.get(k) for k in keep):
        return
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features()
    except Exception:  # noqa: BLE001 - any failure: leave numba's own choice
        return
    if features.get("avx512f"):
        os.environ["NUMBA_CPU_FEATURES"] = features.flatten() + ",-prefer-256-bit"


_wide_vectors()

try:  # numba is a dependency, but the machines must still run where it cannot load
    import numba
    from numba import njit, prange
except Exception:  # pragma: no cover - exercised only where numba is missing or broken
    numba = None

# Reordering sums lets the compiler vectorise them; "no infinities" must stay off, since
# the best logit starts at -inf and a comparison with it would be folded away.
_FAST = {"reassoc", "contract", "nsz", "arcp", "afn"}
# The exp's range reduction must keep its order: reassociated, v - (k - 128) becomes
# (v + 128) - k, and v + 128 rounds away up to 2^-17 of the fraction.
_EXACT = _FAST - {"reassoc"}

# numba caches compiled code beside the source, or for a frozen app in the user's cache.
_CACHE = Path(__file__).is_file() or bool(getattr(sys, "frozen", False))


# numba's fallback "workqueue" threading layer (where no OpenMP or TBB layer loads)
# aborts the process when two threads launch parallel loops at once; the app may run a
# machine and an export together, so launches take turns. A tile holds it ~0.2 ms.
LAUNCH = threading.Lock()


_ready = False
_ready_lock = threading.Lock()
# Why the compiled pass cannot run, for self-test and the benchmark ("" while it can).
reason = "numba is not installed" if numba is None else ""


def available() -> bool:
    """Whether the compiled pass runs; compiles it on first use (or loads it from
    numba's cache). Should compiling fail (a broken numba install, a frozen app missing
    part of it), the routes leave it out instead of failing mid-stream."""
    global _ready, reason
    if _ready or reason:
        return _ready
    with _ready_lock:
        if _ready or reason:
            return _ready
        try:
            _warm_up()
            _ready = True
        except Exception as exc:  # noqa: BLE001 - any failure means: another route
            reason = f"compiling the tile pass failed ({type(exc).__name__}: {exc})"
            warnings.warn(f"ccdm-gui: {reason}; the score machines go without it", stacklevel=2)
    return _ready


def _warm_up() -> None:
    """One call on a 1 x 2 x 4 tile with the argument types the machines pass."""
    f32 = np.float32
    logits = np.array([[[0.5, -1.0, 2.0, -3.0], [1.0, 0.0, -1.0, -2.0]]], f32)
    bank = np.ones((1, 3, 4), f32)
    state = (
        np.zeros((1, 2), f32), np.full((1, 2), -np.inf, f32), np.zeros((1, 2), np.int64),
        np.zeros((1, 2), np.bool_), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2, 1)),
    )  # fmt: skip
    want = np.exp2(logits - logits.max(-1, keepdims=True)).sum(-1)
    tile_pass(logits, bank, 2, 0, np.ones(1, f32), False, FLOOR32, REBASE32, NEGLIGIBLE32, *state)
    if not np.allclose(state[4], want, rtol=1e-5):
        raise RuntimeError("the compiled pass gave a wrong sum on its warm-up tile")


def set_threads(n: int) -> None:
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def _jit(fastmath=_FAST, **kw):
    if numba is None:
        return lambda f: f

    def decorate(f):
        try:
            return njit(fastmath=fastmath, cache=_CACHE, nogil=True, **kw)(f)
        except Exception:  # noqa: BLE001 - no writable cache folder: compile per process
            return njit(fastmath=fastmath, cache=False, nogil=True, **kw)(f)

    return decorate


# 2^r on [-1/2, 1/2], highest power first: fitted to the relative error (see exp2). The
# compiled library (foldc.c) gets these in its arguments, so all use the same numbers.
EXP2_POLY = (
    1.3276465506209798e-03,
    9.675541708244806e-03,
    5.550713297256251e-02,
    2.4022119717306276e-01,
    6.931469670479014e-01,
    1.0000000716558548,
)


@_jit(fastmath=_EXACT)
def exp2(v):
    """2^v in float32 for v in [-126, 127] (relative error below 3e-7).

    v = n + r with |r| <= 1/2; n by truncating v + 128.5 > 0 (truncation vectorises,
    floor does not), 2^n written straight into the exponent bits, 2^r a degree-5
    polynomial fitted to the relative error on [-1/2, 1/2] (7.5e-8 in exact arithmetic;
    Taylor needs degree 6 for the same, one more multiply-add per exp).
    """
    k = np.int32(v + np.float32(128.5))
    r = v - (np.float32(k) - np.float32(128.0))
    c0, c1, c2, c3, c4, c5 = EXP2_POLY
    p = np.float32(c0)
    p = p * r + np.float32(c1)
    p = p * r + np.float32(c2)
    p = p * r + np.float32(c3)
    p = p * r + np.float32(c4)
    p = p * r + np.float32(c5)
    bits = np.int32((k - np.int32(1)) << np.int32(23))
    return p * bits.view(np.float32)


# One tight loop, compiled once per kind of call: a test on a value inside the loop
# would keep the compiler from vectorising it, but ``w`` (the counts of merged
# candidates) and ``v`` (a single value column) are each an array or None, and numba
# compiles each combination apart, so the tests below vanish from the loop. Returns
# the row's sums of e, e * l and e * v; without v the row keeps e for the value dots
# that follow.


@_jit()
def _row(row, w, v, floor):
    ss = row[0] - row[0]
    uu = ss
    aa = ss
    for t in range(row.size):
        lv = max(row[t], floor)
        e = exp2(lv)
        if w is not None:
            e *= w[t]
        ss += e
        uu += e * lv
        if v is None:
            row[t] = e
        else:
            aa += e * v[t]
    return ss, uu, aa


@_jit()
def _dot(a, b):
    acc = a[0] - a[0]
    for t in range(a.size):
        acc += a[t] * b[t]
    return acc


@_jit()
def _rebase(r_g, r_m, delta, started, row, shift, s, u, acc):
    """Move the shift of query (r_g, r_m) up by delta (set it, before its first tile)."""
    if started:
        sc = 2.0 ** (-delta)
        u[r_g, r_m] = sc * (u[r_g, r_m] - delta * s[r_g, r_m])
        s[r_g, r_m] *= sc
        for c in range(acc.shape[2]):
            acc[r_g, r_m, c] *= sc
    shift[r_g, r_m] += delta
    for t in range(row.size):
        row[t] -= delta


@_jit()
def _row_max(row):
    """The largest float of a row, compared as integers: a float compare-and-select is
    not vectorised (it must order NaNs), an integer maximum is. Flipping the magnitude
    bits of negative floats makes integer order equal float order."""
    bits = row.view(np.int32)
    top = np.int32(-2147483648)
    for t in range(bits.size):
        i = bits[t]
        top = max(top, i ^ ((i >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return np.int32(top ^ ((top >> np.int32(31)) & np.int32(0x7FFFFFFF))).view(np.float32)


@_jit(parallel=True)
def tile_pass(
    logits, bank, voff, j0, counts, weighted, floor, rebase, negligible,
    shift, best, best_j, changed, s, u, acc,
):  # fmt: skip
    """Add one tile to the state of every query.

    logits [G, M, T] = l - shift in base 2; bank [G, rows,
    K] holds the values in rows voff.. at columns j0..j0+T-1; counts [K] (weighted).
    A row whose every logit lies below ``negligible`` adds nothing (limits.NEGLIGIBLE).
    State per query (g, m): shift, best (its winner's logit - shift), best_j (the
    winner's index in the chunk), changed (won in this chunk), s = sum e, u = sum e l,
    acc = sum e values (float64: a tile's float32 sums are added to them).
    """
    g_n, m_n, t_n = logits.shape
    for r in prange(g_n * m_n):
        g = r // m_n
        m = r - g * m_n
        row = logits[g, m]
        mx = _row_max(row)
        if mx > best[g, m]:
            j = 0
            while row[j] != mx and j < t_n - 1:
                j += 1
            started = best[g, m] > -np.inf
            if not started or mx > rebase:
                _rebase(g, m, mx, started, row, shift, s, u, acc)
                mx = mx - mx
            best[g, m] = mx
            best_j[g, m] = j0 + j
            changed[g, m] = True
        if mx >= negligible:
            _accumulate(row, g, m, bank, voff, j0, counts, weighted, floor, s, u, acc)


@_jit()
def _accumulate(row, g, m, bank, voff, j0, counts, weighted, floor, s, u, acc):
    t_n = row.size
    cv = acc.shape[2]
    w = counts[j0 : j0 + t_n]
    if cv == 1:
        v = bank[g, voff, j0 : j0 + t_n]
        if weighted:
            ss, uu, aa = _row(row, w, v, floor)
        else:
            ss, uu, aa = _row(row, None, v, floor)
        acc[g, m, 0] += aa
    else:
        if weighted:
            ss, uu, _ = _row(row, w, None, floor)
        else:
            ss, uu, _ = _row(row, None, None, floor)
        for c in range(cv):
            acc[g, m, c] += _dot(row, bank[g, voff + c, j0 : j0 + t_n])
    s[g, m] += ss
    u[g, m] += uu
