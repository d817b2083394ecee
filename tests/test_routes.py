"""The one route selector (core/machines/routes.py): its priority order and gate checks
on hosts of every kind, the override (CCDM_ROUTE and the context manager), and that the
machines take the route it names."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from machine_reference import random_case

from ccdm_gui.core.machines import fused, machine_denoise, native, routes
from ccdm_gui.core.machines.routes import Host, Route, Task, select

AVX512_HOST = Host(library=True, isa=native.AVX512, numba=True)
AVX2_HOST = Host(library=True, isa=native.AVX2, numba=True)


def task(**kw) -> Task:
    """A grey P = 3 patch machine's group on a CPU, with ``kw`` changed."""
    base = dict(device="cpu", dtype=torch.float32, key_numbers=9, value_numbers=1)
    return Task(**{**base, "rectangles": True, **kw})


@pytest.fixture(autouse=True)
def no_environment_override(monkeypatch):
    monkeypatch.delenv(routes.ENV_VAR, raising=False)


@pytest.mark.parametrize(
    "kw,host,want",
    [
        ({}, AVX512_HOST, Route.FOLD_AVX512),
        ({}, AVX2_HOST, Route.FOLD_AVX2),
        ({"key_numbers": 81, "rectangles": False}, AVX512_HOST, Route.FOLD_AVX512),  # P = 9
        ({"key_numbers": 49}, AVX512_HOST, Route.WINDOW_SUMS_AVX512),  # P = 7 grey
        ({"key_numbers": 75, "value_numbers": 3}, AVX2_HOST, Route.WINDOW_SUMS_AVX2),
        ({"key_numbers": 121, "rectangles": False}, AVX512_HOST, Route.NUMBA),
        ({"key_numbers": 121}, Host(library=False, isa=0, numba=True), Route.NUMBA),
        ({}, Host(library=False, isa=0, numba=True), Route.NUMBA),
        ({}, Host(library=True, isa=0, numba=True), Route.NUMBA),  # a CPU without AVX2
        ({}, Host(library=False, isa=0, numba=False), Route.TORCH),
        ({"dtype": torch.float64}, AVX512_HOST, Route.TORCH),
        ({"device": "cuda"}, AVX512_HOST, Route.TORCH),
        ({"key_numbers": 1024, "value_numbers": 1024}, AVX512_HOST, Route.TORCH),  # ideal
    ],
)
def test_the_first_route_that_can_and_pays_is_chosen(kw, host, want):
    assert select(task(**kw), host) == want


def test_every_route_has_named_checks_and_torch_takes_anything():
    assert set(routes.CAN) == set(routes.PAYS) == set(Route) == set(routes.PRIORITY)
    assert routes.PRIORITY[-1] is Route.TORCH and not routes.CAN[Route.TORCH]
    gpu64 = task(device="cuda", dtype=torch.float64, key_numbers=10**6, rectangles=False)
    assert routes.failing_check(Route.TORCH, gpu64, AVX512_HOST) is None
    assert routes.failing_check(Route.FOLD_AVX512, gpu64, AVX512_HOST) == "on_cpu"
    assert routes.failing_check(Route.FOLD_AVX512, task(), AVX2_HOST) == "cpu_has_avx512"
    long = task(key_numbers=121)
    assert routes.failing_check(Route.FOLD_AVX2, long, AVX2_HOST) == "patch_short_enough"
    assert routes.failing_check(Route.FOLD_AVX2, long, AVX2_HOST, pays=False) is None


def test_an_override_allows_its_routes_in_its_order_wherever_they_can_run():
    # One named route runs where it does not pay; several: the first that pays, else
    # the first that can.
    with routes.override("fold"):
        assert select(task(key_numbers=225), AVX512_HOST) == Route.FOLD_AVX512
        assert select(task(key_numbers=225), AVX2_HOST) == Route.FOLD_AVX2
    with routes.override("window-sums-avx2"):
        assert select(task(), AVX512_HOST) == Route.WINDOW_SUMS_AVX2
    with routes.override("fold", "numba", "torch"):  # automatic, without the window sums
        assert select(task(key_numbers=49), AVX512_HOST) == Route.FOLD_AVX512
        assert select(task(key_numbers=121), AVX512_HOST) == Route.NUMBA
        assert select(task(dtype=torch.float64), AVX512_HOST) == Route.TORCH
    with routes.override("torch", "fold"):
        assert select(task(), AVX512_HOST) == Route.TORCH
    assert select(task(), AVX512_HOST) == Route.FOLD_AVX512  # the block is over


def test_a_task_no_allowed_route_can_compute_is_an_error_naming_the_checks():
    with routes.override("window-sums"), pytest.raises(ValueError) as err:
        select(task(rectangles=False), AVX2_HOST)
    msg = str(err.value)
    assert "window-sums-avx512: cpu_has_avx512" in msg
    assert "window-sums-avx2: groups_are_rectangles" in msg
    assert "\n" not in msg


def test_the_environment_variable_is_the_same_override(monkeypatch):
    monkeypatch.setenv(routes.ENV_VAR, "numba, torch")
    assert select(task(), AVX512_HOST) == Route.NUMBA
    assert select(task(dtype=torch.float64), AVX512_HOST) == Route.TORCH
    assert routes.merge_duplicates()
    with routes.override("fold"):  # the context manager wins
        assert select(task(), AVX512_HOST) == Route.FOLD_AVX512
    monkeypatch.setenv(routes.ENV_VAR, "no-merge")
    assert select(task(), AVX512_HOST) == Route.FOLD_AVX512 and not routes.merge_duplicates()
    monkeypatch.setenv(routes.ENV_VAR, "fold,nativ")
    with pytest.raises(ValueError, match=r"CCDM_ROUTE='fold,nativ': no route 'nativ' \(known: "):
        select(task(), AVX512_HOST)


def test_the_environment_variable_reaches_a_fresh_process():
    code = (
        "import torch; from ccdm_gui.core.machines import routes; "
        "print(routes.select(routes.Task('cpu', torch.float32, 9, 1, True)).value)"
    )
    env = {k: v for k, v in os.environ.items() if k != routes.ENV_VAR}
    for value, want in (("numba", "numba"), ("torch", "torch")):
        run = subprocess.run(
            [sys.executable, "-c", code], env={**env, routes.ENV_VAR: value},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert run.stdout.strip() == want


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(
    "machine,boundary,p,c,want",
    [
        ("els", "circular", 3, 1, ["fold"]),
        ("bbels", "zeros", 3, 3, ["fold"] * 5),  # interior and four edge strips
        ("els", "zeros", 7, 1, ["window-sums"]),
        ("bbels", "zeros", 5, 3, ["window-sums"] * 5),  # 75 numbers a patch
        ("ls", "circular", 3, 1, []),  # local.py: no route to choose
        ("ideal", "zeros", 3, 1, ["torch"]),  # whole images as values
    ],
)
def test_machines_on_this_cpu_take_the_routes_select_names(machine, boundary, p, c, want):
    assert native.available(), native.reason  # built on install here
    assert fused.available(), fused.reason  # numba is a dependency
    widest = {"fold": select(task()), "window-sums": select(task(key_numbers=49))}
    x, train = random_case(1, c, 12, 12, 3, 1, 0.5)
    with routes.watch() as taken:
        machine_denoise(x, 0.5, train, machine, p, boundary)
        machine_denoise(x.double(), 0.5, train.double(), machine, p, boundary)
    n = len(want)
    assert taken[:n] == [widest.get(w) or Route(w) for w in want]
    assert taken[n:] == [Route.TORCH] * n  # float64: the exact checks' route


def test_shortest_window_sums_patch():
    assert routes.shortest_window_sums_patch() == 7  # 49 numbers
    assert routes.shortest_window_sums_patch(3) == 5  # 75 numbers; P = 3 has 27
