"""Which CPU route the score machines take in a test: the compiled fold (foldc.c, with
AVX-512 or AVX2), numba's tile pass, or torch alone (the route of GPUs and float64)."""

from __future__ import annotations

import pytest

from ccdm_gui.core.machines import fused, native

ROUTES = ("native", "native-avx2", "numba", "torch")


def use_route(monkeypatch, route: str) -> None:
    assert route in ROUTES, route
    is_native = route.startswith("native")
    if is_native and not native.available():
        pytest.fail(f"the compiled fold is not available: {native.reason}")
    monkeypatch.setattr(native, "ENABLED", is_native)
    # By default long patches go to numba (native.MAX_DIM); here the kernel takes all.
    monkeypatch.setattr(native, "MAX_DIM", 1 << 30)
    monkeypatch.setattr(fused, "ENABLED", route == "numba")
    if route == "native-avx2":  # every AVX-512 CPU has AVX2 too: its code runs here
        monkeypatch.setattr(native, "_isa", 1)
