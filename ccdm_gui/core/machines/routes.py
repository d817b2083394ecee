"""Which route computes a softmax of the score machines: one function, ``select``, decides.

Every route computes the same exact softmax of queries over candidate patches (x0, the
winner, its weight, the entropy); they differ in speed and in what they can run on:

- ``window-sums-avx512`` / ``-avx2``: the window-sum kernel (windowsums.py, wsum_body.h),
  cross-terms as running sums of shifted products; groups of queries and keys that fill
  rectangles, on a CPU with the compiled library; pays for long patches.
- ``fold-avx512`` / ``-avx2``: the compiled fold (foldc.c through native.py, a stream of
  key chunks, stream_fold.py); pays for short patches.
- ``numba``: torch's matrix product for the logits, numba's compiled pass for the rest
  (fused.py, stream_numba.py); long patches where the library is, everything where not.
- ``torch``: tensor operations only (stream_torch.py); GPUs, float64 (the exact checks),
  wide values (the ideal machine's whole images), and installs with neither of the above.

``select`` walks PRIORITY and returns the first route whose gate checks all pass (as
PyTorch's ``select_sdp_backend`` picks an attention kernel). A route's checks are of two
kinds: CAN, whether it computes the task at all (device, dtype, library, instruction
set, value count, layout), and PAYS, whether it is the fastest there (measured, below).

One override, for users, tests and benchmarks alike: the environment variable CCDM_ROUTE
or the context manager ``override``. It names the routes allowed, in order of preference
(``fold`` and ``window-sums`` stand for both instruction sets, widest first), and
``no-merge`` to stream duplicate patches one by one (dedup.py; speed only). The first
allowed route that can and pays is taken, else the first that can: one named route thus
runs every task it can compute, and ``fold,numba,torch`` is the automatic choice
without window sums. A task no allowed route can compute is an error naming the checks
that failed. ``watch`` records the routes taken, for the self-test and for tests that
assert which route ran.

Machines that are not a softmax over shared candidates take no route: LS and bbELS's
corner pixels are window sums of product images (local.py), whatever the override.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum

import torch

from . import fused, native
from .limits import MAX_VALUES

ENV_VAR = "CCDM_ROUTE"


class Route(Enum):
    WINDOW_SUMS_AVX512 = "window-sums-avx512"
    WINDOW_SUMS_AVX2 = "window-sums-avx2"
    FOLD_AVX512 = "fold-avx512"
    FOLD_AVX2 = "fold-avx2"
    NUMBA = "numba"
    TORCH = "torch"

    @property
    def isa(self) -> int:
        """The compiled library's code the route runs (native.AVX512, native.AVX2; 0: none)."""
        if self.value.endswith("avx512"):
            return native.AVX512
        return native.AVX2 if self.value.endswith("avx2") else 0

    @property
    def window_sums(self) -> bool:
        return self.value.startswith("window-sums")

    @property
    def streamed(self) -> bool:
        """Whether the route takes key chunks one after another (an open_stream state)."""
        return not self.window_sums


PRIORITY = tuple(Route)
# Names an override may use beside the routes' own: a family, widest code first.
FAMILIES = {
    "window-sums": (Route.WINDOW_SUMS_AVX512, Route.WINDOW_SUMS_AVX2),
    "fold": (Route.FOLD_AVX512, Route.FOLD_AVX2),
}
NO_MERGE = "no-merge"

# From this many numbers a patch (C * P * P) on, the window sums beat the streamed
# routes. Streamed time over window-sum time, alternating in one process, N = 1,000,
# ELS and bbELS, random and MNIST (`bench/windowsums.py --p 3 5 7 9 11 15`): P = 3
# 0.27-0.76, P = 5 0.52-0.97, P = 7 1.07-1.41, P = 9 1.28-1.46, P = 11 1.60-2.44, P = 15
# 2.02-2.30; colour (C = 3, random): P = 5 (75 numbers) 1.13-1.18, P = 7 1.69-1.73.
WINDOW_SUMS_MIN_NUMBERS = 49
# Up to this many numbers a patch (P = 9 grey, P = 5 colour) the compiled fold beats the
# numba route: numba's time over the fold's, alternating in one process, N = 1,000
# (`bench/native_ab.py`, random and MNIST): P = 3 1.5-1.65, P = 5 1.0-1.4, P = 7
# 1.04-1.87, P = 9 1.20-1.29, colour P = 5 1.10-1.15; P = 11 0.85-1.14, P = 15 0.64-0.82.
FOLD_MAX_NUMBERS = 81
# Up to this many values numba's pass dots each value row itself; wider values (the
# ideal machine's whole images) want a matrix product, the torch route's.
NUMBA_MAX_VALUES = 8


@dataclass(frozen=True)
class Task:
    """What a route is chosen for: one softmax of queries over shared candidates."""

    device: str  # torch device type: "cpu", "cuda", ...
    dtype: torch.dtype  # the working dtype (float32, or float64 for exact checks)
    key_numbers: int  # numbers per candidate: C * P * P (the ideal machine: C * H * W)
    value_numbers: int  # numbers the softmax averages per candidate: C (ideal: C * H * W)
    rectangles: bool = False  # each group's queries and its keys fill rectangles

    @classmethod
    def of(cls, x: torch.Tensor, key_numbers: int, value_numbers: int, rectangles=False):
        return cls(x.device.type, x.dtype, key_numbers, value_numbers, rectangles)


class Host:
    """What this process can run: the compiled library and its widest code, numba. Read
    from native.py and fused.py when asked (numba's pass compiles on first use); a test
    of the selector passes its own values."""

    def __init__(self, library: bool | None = None, isa: int | None = None, numba=None):
        self._library, self._isa, self._numba = library, isa, numba

    @property
    def library(self) -> bool:
        return native.available() if self._library is None else self._library

    @property
    def isa(self) -> int:
        return native.best_isa() if self._isa is None else self._isa

    @property
    def numba(self) -> bool:
        return fused.available() if self._numba is None else self._numba


Check = Callable[[Task, Host], bool]


def on_cpu(task: Task, host: Host) -> bool:
    return task.device == "cpu"


def float32(task: Task, host: Host) -> bool:
    return task.dtype == torch.float32


def library_loaded(task: Task, host: Host) -> bool:
    return host.library


def cpu_has_avx512(task: Task, host: Host) -> bool:
    return host.library and host.isa >= native.AVX512


def cpu_has_avx2(task: Task, host: Host) -> bool:
    return host.library and host.isa >= native.AVX2


def values_fit_kernel(task: Task, host: Host) -> bool:
    return task.value_numbers <= MAX_VALUES


def groups_are_rectangles(task: Task, host: Host) -> bool:
    return task.rectangles


def numba_compiles(task: Task, host: Host) -> bool:
    return host.numba


def patch_long_enough(task: Task, host: Host) -> bool:
    return task.key_numbers >= WINDOW_SUMS_MIN_NUMBERS


def patch_short_enough(task: Task, host: Host) -> bool:
    return task.key_numbers <= FOLD_MAX_NUMBERS


def few_values(task: Task, host: Host) -> bool:
    return task.value_numbers <= NUMBA_MAX_VALUES


_COMPILED = (on_cpu, float32, library_loaded)
_RECTANGLES = (values_fit_kernel, groups_are_rectangles)
# Checked in order; numba's compile (slow the first time) comes last.
CAN: dict[Route, tuple[Check, ...]] = {
    Route.WINDOW_SUMS_AVX512: (*_COMPILED, cpu_has_avx512, *_RECTANGLES),
    Route.WINDOW_SUMS_AVX2: (*_COMPILED, cpu_has_avx2, *_RECTANGLES),
    Route.FOLD_AVX512: (*_COMPILED, cpu_has_avx512, values_fit_kernel),
    Route.FOLD_AVX2: (*_COMPILED, cpu_has_avx2, values_fit_kernel),
    Route.NUMBA: (on_cpu, float32, values_fit_kernel, numba_compiles),
    Route.TORCH: (),
}
PAYS: dict[Route, tuple[Check, ...]] = {
    Route.WINDOW_SUMS_AVX512: (patch_long_enough,),
    Route.WINDOW_SUMS_AVX2: (patch_long_enough,),
    Route.FOLD_AVX512: (patch_short_enough,),
    Route.FOLD_AVX2: (patch_short_enough,),
    Route.NUMBA: (few_values,),
    Route.TORCH: (),
}


@dataclass(frozen=True)
class Override:
    routes: tuple[Route, ...] | None = None  # None: PRIORITY, with the PAYS checks
    merge: bool = True  # merge duplicate candidate patches (dedup.py)

    @classmethod
    def parse(cls, text: str, source: str = ENV_VAR) -> Override:
        """``"fold,torch"``, ``"numba,no-merge"``, ``"no-merge"``, ``""`` (automatic)."""
        names = [t.strip() for t in text.split(",") if t.strip()]
        merge = NO_MERGE not in names
        chosen: list[Route] = []
        for name in names:
            if name == NO_MERGE:
                continue
            found = FAMILIES.get(name) or tuple(r for r in Route if r.value == name)
            if not found:
                known = ", ".join([*FAMILIES, *(r.value for r in Route), NO_MERGE])
                raise ValueError(f"{source}={text!r}: no route {name!r} (known: {known})")
            chosen += [r for r in found if r not in chosen]
        return cls(tuple(chosen) or None, merge)


_forced: ContextVar[Override | None] = ContextVar("ccdm_route_override", default=None)
_watchers: ContextVar[tuple[list[Route], ...]] = ContextVar("ccdm_route_watchers", default=())


def current() -> Override:
    """The override in force: ``override``'s, else CCDM_ROUTE's, else none."""
    forced = _forced.get()
    return forced if forced is not None else Override.parse(os.environ.get(ENV_VAR, ""))


@contextmanager
def override(*routes: Route | str, merge: bool = True) -> Iterator[Override]:
    """Allow only ``routes`` (names as CCDM_ROUTE takes them; none: the automatic choice)
    inside the block, in this thread; it wins over CCDM_ROUTE."""
    names = ",".join(r.value if isinstance(r, Route) else r for r in routes)
    forced = Override.parse(names, "override")
    forced = Override(forced.routes, merge)
    token = _forced.set(forced)
    try:
        yield forced
    finally:
        _forced.reset(token)


@contextmanager
def watch() -> Iterator[list[Route]]:
    """A list that receives every route ``select`` returns inside the block."""
    taken: list[Route] = []
    token = _watchers.set((*_watchers.get(), taken))
    try:
        yield taken
    finally:
        _watchers.reset(token)


def failing_check(route: Route, task: Task, host: Host | None = None, pays=True) -> str | None:
    """The name of ``route``'s first check that ``task`` fails (``pays``: of the PAYS
    checks too), or None where it passes them all. Checks run in order and stop at the
    first failure: later ones may assume earlier ones, and numba's compile is slow."""
    host = host or Host()
    for check in CAN[route] + (PAYS[route] if pays else ()):
        if not check(task, host):
            return check.__name__
    return None


def select(task: Task, host: Host | None = None) -> Route:
    """The route that computes ``task``: the first allowed (PRIORITY, or the override's
    routes) that can and pays, else under an override the first allowed that can."""
    host = host or Host()
    forced = current().routes
    allowed = forced or PRIORITY
    found = next((r for r in allowed if failing_check(r, task, host) is None), None)
    if found is None and forced:
        found = next((r for r in forced if failing_check(r, task, host, False) is None), None)
    if found is None:
        why = "; ".join(f"{r.value}: {failing_check(r, task, host, False)}" for r in allowed)
        raise ValueError(f"no route allowed by {ENV_VAR} computes this task ({why}); add torch")
    for taken in _watchers.get():
        taken.append(found)
    return found


def merge_duplicates() -> bool:
    """Whether streamed routes merge identical candidate patches (dedup.py)."""
    return current().merge


def shortest_window_sums_patch(channels: int = 1) -> int:
    """The shortest patch size the window sums pay for, images of ``channels`` channels."""
    p = 1
    while channels * p * p < WINDOW_SUMS_MIN_NUMBERS:
        p += 2
    return p
