"""The window-sum route (windowsums.py, wsum_body.h) against the float64 reference: every
rectangle shape it takes (ELS's whole image, bbELS's interior, edge rows and transposed
edge columns), channels, several blocks of training images on two threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from machine_reference import assert_matches, random_case, reference_denoise
from routes import only, resolve

from ccdm_gui.core.machines import machine_denoise, native, routes, windowsums
from ccdm_gui.core.machines.routes import Route

pytestmark = pytest.mark.skipif(not native.available(), reason="needs the compiled fold")


CASES = [
    # machine, boundary, P, C, H, W, N, ab
    ("els", "circular", 1, 1, 6, 7, 3, 0.5),
    ("els", "circular", 3, 3, 9, 7, 5, 0.9),
    ("els", "zeros", 5, 1, 10, 13, 40, 0.3),
    ("els", "circular", 7, 3, 11, 12, 9, 0.7),
    ("els", "zeros", 9, 1, 13, 11, 70, 0.9),
    ("bbels", "zeros", 3, 1, 8, 9, 33, 0.5),
    ("bbels", "zeros", 5, 3, 12, 10, 6, 0.9),
    ("bbels", "zeros", 7, 1, 14, 11, 40, 0.3),
    ("bbels", "zeros", 9, 3, 13, 15, 4, 0.7),
]


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("machine,boundary,p,c,h,w,n,ab", CASES)
def test_window_sums_match_reference(isa, machine, boundary, p, c, h, w, n, ab):
    # Forced, the route takes every patch size (by default only long patches).
    if isa == "avx512" and native.best_isa() < native.AVX512:
        pytest.skip("this CPU lacks AVX-512")
    x, train = random_case(p * 10 + c + n, c, h, w, n, 2, ab)
    with only(f"window-sums-{isa}") as taken:
        out = machine_denoise(x, ab, train, machine, p, boundary)
    assert set(taken) == {Route(f"window-sums-{isa}")}, "the window-sum route did not run"
    assert_matches(out, reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary))


def test_blocks_split_over_two_threads_match_reference():
    # 100 images: 4 blocks of 32 lanes (7 of 16 with AVX2), taken by two threads whose
    # states are merged at the end; the last block is partly empty.
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x, train = random_case(5, 1, 12, 12, 100, 1, 0.6)
        with only("window-sums") as taken:
            out = machine_denoise(x, 0.6, train, "bbels", 5, "zeros")
    finally:
        torch.set_num_threads(before)
    assert taken
    assert_matches(out, reference_denoise(x.numpy(), 0.6, train.numpy(), "bbels", 5, "zeros"))


@pytest.mark.parametrize("threads", [1, 2])
def test_runs_of_images_in_separate_calls_match_reference(monkeypatch, threads):
    # One kernel call per block of images and thread (so that a cancel is heard between
    # them): 100 images in 4-7 calls carry each thread's state from call to call, and
    # give what one call gives.
    monkeypatch.setattr(windowsums, "IMAGES_PER_CALL", 1)
    calls = []
    wsum = native.wsum
    monkeypatch.setattr(native, "wsum", lambda args, isa: calls.append(1) or wsum(args, isa))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, train = random_case(6, 1, 12, 12, 100, 2, 0.6)
        with only("window-sums") as taken:
            out = machine_denoise(x, 0.6, train, "bbels", 7, "zeros")
        monkeypatch.setattr(windowsums, "IMAGES_PER_CALL", 1000)
        with only("window-sums"):
            whole = machine_denoise(x, 0.6, train, "bbels", 7, "zeros")
    finally:
        torch.set_num_threads(before)
    assert taken and len(calls) > 3
    assert_matches(out, reference_denoise(x.numpy(), 0.6, train.numpy(), "bbels", 7, "zeros"))
    torch.testing.assert_close(out.x0, whole.x0, rtol=0, atol=0)
    assert torch.equal(out.source_index, whole.source_index)


def test_peaked_weights_move_the_shift():
    # abar near 1: logits spread over thousands, so the lazy shift moves many times.
    x, train = random_case(8, 1, 10, 10, 20, 2, 0.995)
    with only("window-sums") as taken:
        out = machine_denoise(x, 0.995, train, "els", 3, "circular")
    assert taken
    assert_matches(out, reference_denoise(x.numpy(), 0.995, train.numpy(), "els", 3, "circular"))


def test_strided_training_images_are_read_through_their_strides():
    g = torch.Generator().manual_seed(3)
    stored = torch.rand(7, 2, 11, 9, generator=g) * 2 - 1  # [N, C, W, H] in memory
    train = stored.transpose(2, 3)  # [N, C, H, W], not contiguous
    x = train[:2].clone() * 0.8 + 0.2 * torch.randn(2, 2, 9, 11, generator=g)
    with only("window-sums") as taken:
        out = machine_denoise(x, 0.64, train, "bbels", 5, "zeros")
    assert taken
    ref = reference_denoise(x.numpy(), 0.64, train.numpy(), "bbels", 5, "zeros")
    assert_matches(out, ref)


def test_long_patches_take_the_route_and_agree_with_the_streamed_one():
    x, train = random_case(12, 1, 24, 24, 50, 1, 0.5)
    p = routes.shortest_window_sums_patch() + 2
    with routes.watch() as taken:
        fast = machine_denoise(x, 0.5, train, "els", p, "circular")
        with routes.override("fold", "numba", "torch"):  # the automatic choice without them
            streamed = machine_denoise(x, 0.5, train, "els", p, "circular")
    assert taken == [resolve("window-sums"), resolve("fold")]
    np.testing.assert_allclose(fast.x0.numpy(), streamed.x0.numpy(), atol=1e-4)
    np.testing.assert_allclose(fast.weight.numpy(), streamed.weight.numpy(), atol=1e-4)
    np.testing.assert_allclose(fast.entropy.numpy(), streamed.entropy.numpy(), atol=1e-4)
    clear = streamed.weight.numpy() > 0.51  # the runner-up weighs under 0.49: no near-tie
    assert clear.any()
    assert np.array_equal(fast.source_index.numpy()[clear], streamed.source_index.numpy()[clear])


def test_rectangles_are_recognised_only_when_full():
    from ccdm_gui.core.machines.patches import grid_positions

    full = grid_positions(range(2, 5), range(1, 4), "cpu")
    assert windowsums.rects_of(full, full[:1]) == (2, 5, 1, 4, 2, 3, 1, 2)
    assert windowsums.rects_of(full[1:], full) is None
