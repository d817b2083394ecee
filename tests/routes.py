"""Running a test on one route: through the one override every user has (routes.override,
the context-manager form of CCDM_ROUTE), with a record of the routes taken so the test
can assert that the route it meant is the one that ran."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from ccdm_gui.core.machines import native, routes
from ccdm_gui.core.machines.routes import Route

# A task every CPU route can compute where its library and numba are there.
_ANY_CPU_TASK = routes.Task("cpu", torch.float32, 9, 1, rectangles=True)
# The streamed routes a CPU test can force: the compiled fold with the widest code this
# CPU runs, its AVX2 code (every AVX-512 CPU has AVX2 too), numba's pass, torch alone.
STREAMED = ("fold", "fold-avx2", "numba", "torch")


def resolve(name: str) -> Route:
    """The route a name stands for on this CPU (a family: its widest code here)."""
    for route in routes.Override.parse(name).routes:
        if routes.failing_check(route, _ANY_CPU_TASK, pays=False) is None:
            return route
    pytest.fail(f"{name} cannot run here: compiled library {native.reason or 'loaded'}")


@contextmanager
def only(name: str):
    """Inside the block only route ``name`` computes; yields the list of routes taken."""
    route = resolve(name)
    with routes.override(route), routes.watch() as taken:
        yield taken
