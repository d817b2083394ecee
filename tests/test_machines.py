"""The score machines against the literal float64 reference, the paper's toy case, and
their argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from machine_reference import (
    assert_matches,
    candidates,
    random_case,
    reference_denoise,
    reference_top,
)
from routes import only, resolve

from ccdm_gui.core.machines import (
    api,
    dedup,
    local,
    logit_count,
    machine_denoise,
    routes,
    top_candidates,
)
from ccdm_gui.core.sampler import initial_noise, sample
from ccdm_gui.core.schedule import abar as abar_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")


COMBOS = [("ls", "zeros"), ("ls", "circular"), ("els", "circular"), ("els", "zeros")]
COMBOS += [("bbels", "zeros")]
SIZES = [(7, 9), (8, 6), (5, 5), (6, 7)]


def _patch_cases():
    cases = []
    k = 0
    for machine, boundary in COMBOS:
        for p in (1, 3, 5, 7, 9):
            for c in (1, 3):
                h, w = SIZES[k % len(SIZES)]
                ab = (0.3, 0.9)[k % 2]
                cases.append(
                    pytest.param(
                        machine,
                        boundary,
                        p,
                        c,
                        h,
                        w,
                        ab,
                        k,
                        id=f"{machine}-{boundary}-P{p}-C{c}-{h}x{w}-ab{ab}",
                    )
                )
                k += 1
    return cases


@pytest.mark.parametrize("machine,boundary,p,c,h,w,ab,seed", _patch_cases())
def test_patch_machines_match_reference(machine, boundary, p, c, h, w, ab, seed):
    n = 1 + (seed * 7) % 13
    x, train = random_case(seed, c, h, w, n, 2, ab)
    out = machine_denoise(x, ab, train, machine, p, boundary)
    assert out.x0.dtype == torch.float32 and out.x0.shape == x.shape
    assert out.source_index.dtype == torch.int64 and out.source_yx.shape == (2, h, w, 2)
    ref = reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary)
    assert_matches(out, ref)


@pytest.mark.parametrize(
    "chunk,route",
    [(None, "fold"), (13, "fold-avx2"), (None, "numba"), (13, "numba"), (13, "torch")],
)
@pytest.mark.parametrize(
    "machine,boundary,p,c,h,w,ab",
    [
        ("els", "circular", 7, 1, 10, 12, 0.9),
        ("els", "zeros", 9, 3, 11, 12, 0.3),
        ("bbels", "zeros", 7, 3, 12, 10, 0.9),
        ("bbels", "zeros", 9, 1, 13, 11, 0.3),
    ],
)
def test_large_patches_on_larger_images_match_reference(
    machine, boundary, p, c, h, w, ab, chunk, route
):
    # The sizes above fall back to LS from P = 7 on; here P = 7 and 9 run the real
    # machines (bbELS with edge strips 3 and 4 pixels deep), with chunk=13 in several
    # chunks of images too, on each streamed CPU route (by default these patches take
    # the window sums: test_windowsums.py).
    with only(route) as taken:
        x, train = random_case(40 + p + c, c, h, w, 9, 2, ab)
        out = machine_denoise(x, ab, train, machine, p, boundary, chunk=chunk)
    assert taken == [resolve(route)] * _routed_problems(machine, p, h, w)
    assert_matches(out, reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary))


def _routed_problems(machine: str, p: int, h: int, w: int) -> int:
    """How many problems of a machine call take a route: ELS one, bbELS its interior and
    four edge strips (its corners, and LS, are local.py's)."""
    if machine == "ls" or p >= min(h, w):
        return 0
    return 1 if machine == "els" or p == 1 else 5


@pytest.mark.parametrize("machine,boundary,p,c,h,w,ab,seed", _patch_cases()[2::4])
def test_numba_route_matches_reference(machine, boundary, p, c, h, w, ab, seed):
    # Where the compiled fold is not built (no C compiler at install, no AVX2).
    with only("numba") as taken:
        x, train = random_case(seed + 200, c, h, w, 1 + (seed * 3) % 13, 2, ab)
        out = machine_denoise(x, ab, train, machine, p, boundary, chunk=11)
    assert taken == [routes.Route.NUMBA] * _routed_problems(machine, p, h, w)
    assert_matches(out, reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary))


@pytest.mark.parametrize("machine,boundary,p,c,h,w,ab,seed", _patch_cases()[::4])
def test_torch_route_matches_reference(machine, boundary, p, c, h, w, ab, seed):
    # The route a GPU (or a machine without numba) takes, checked here on the CPU.
    with only("torch") as taken:
        x, train = random_case(seed + 100, c, h, w, 1 + (seed * 5) % 13, 2, ab)
        out = machine_denoise(x, ab, train, machine, p, boundary, chunk=9)
    assert taken == [routes.Route.TORCH] * _routed_problems(machine, p, h, w)
    assert_matches(out, reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary))


@pytest.mark.parametrize("c,ab,boundary", [(1, 0.3, "zeros"), (3, 0.9, "circular")])
def test_ideal_matches_reference(c, ab, boundary):
    x, train = random_case(11, c, 7, 9, 17, 3, ab)
    out = machine_denoise(x, ab, train, "ideal", 5, boundary)
    ref = reference_denoise(x.numpy(), ab, train.numpy(), "ideal", 5, boundary)
    assert_matches(out, ref)


def test_float64_input_is_computed_in_float64():
    x, train = random_case(3, 3, 8, 6, 9, 2, 0.9)
    x, train = x.double(), train.double()
    out = machine_denoise(x, 0.9, train, "bbels", 3, "zeros")
    assert out.x0.dtype == torch.float64
    ref = reference_denoise(x.numpy(), 0.9, train.numpy(), "bbels", 3, "zeros")
    assert_matches(out, ref, tol=1e-9)


@pytest.mark.parametrize("machine,boundary", COMBOS + [("ideal", "zeros")])
def test_many_small_chunks_give_the_same_answer(machine, boundary):
    # chunk=1 streams one candidate (or one image) at a time: hundreds of rescalings of
    # the running sums, which must still reproduce the reference.
    x, train = random_case(5, 1, 7, 9, 5, 2, 0.9)
    out = machine_denoise(x, 0.9, train, machine, 3, boundary, chunk=1)
    ref = reference_denoise(x.numpy(), 0.9, train.numpy(), machine, 3, boundary)
    assert_matches(out, ref)
    big = machine_denoise(x, 0.9, train, machine, 3, boundary)
    torch.testing.assert_close(out.x0, big.x0, atol=1e-5, rtol=0)


def test_hard_regime_keeps_weights_finite():
    # abar near 1 makes logits span thousands: without the running-max shift every
    # exp would overflow or underflow.
    x, train = random_case(8, 1, 8, 6, 10, 2, 0.999)
    for machine in ("els", "bbels"):
        out = machine_denoise(x, 0.999, train, machine, 5, "zeros", chunk=7)
        ref = reference_denoise(x.numpy(), 0.999, train.numpy(), machine, 5, "zeros")
        assert torch.isfinite(out.x0).all()
        assert_matches(out, ref, tol=2e-4)


def test_abar_one_is_nearest_patch():
    x, train = random_case(9, 1, 6, 7, 5, 1, 0.95)
    out = machine_denoise(x, 1.0, train, "els", 3, "circular")
    ref = reference_denoise(x.numpy(), 1.0 - 1e-9, train.numpy(), "els", 3, "circular")
    np.testing.assert_array_equal(out.source_index.numpy(), ref["source_index"])
    np.testing.assert_array_equal(out.source_yx.numpy(), ref["source_yx"])
    assert torch.all(out.weight > 0.999)


def test_toy_two_image_els_is_tanh_of_window_sum():
    h, w, ab = 9, 11, 0.6
    train = torch.stack([-torch.ones(1, h, w), torch.ones(1, h, w)])
    x = torch.randn(3, 1, h, w, generator=torch.Generator().manual_seed(0))
    x64 = x.double()
    s = F.conv2d(F.pad(x64, (1, 1, 1, 1), mode="circular"), torch.ones(1, 1, 3, 3).double())
    expected = torch.tanh(math.sqrt(ab) * s / (1 - ab))
    out = machine_denoise(x, ab, train, "els", 3, "circular")
    torch.testing.assert_close(out.x0.double(), expected, atol=1e-5, rtol=0)  # float32 rounding
    out64 = machine_denoise(x64, ab, train.double(), "els", 3, "circular")
    torch.testing.assert_close(out64.x0, expected, atol=1e-12, rtol=0)


def test_toy_ddim_converges_to_local_majority():
    h, w = 16, 16
    train = torch.stack([-torch.ones(1, h, w), torch.ones(1, h, w)])
    x_init = initial_noise((4, 1, h, w), seed=1)

    def denoiser(x, t):
        return machine_denoise(x, abar_of(t), train, "els", 3, "circular")

    final = sample(denoiser, x_init, 200).final
    assert torch.all(final.abs() > 0.99), "the sample is not binary"
    binary = torch.sign(final)
    window = F.conv2d(F.pad(binary, (1, 1, 1, 1), mode="circular"), torch.ones(1, 1, 3, 3))
    agree = (torch.sign(window) == binary).float().mean().item()
    assert agree >= 0.99, f"only {agree:.3f} of pixels equal their 3x3 majority"


def _mostly_constant(seed: int, n: int, c: int, h: int, w: int) -> torch.Tensor:
    """Background -1 images with one small blob each, and one image repeated: most
    windows are identical, as in MNIST."""
    g = torch.Generator().manual_seed(seed)
    train = -torch.ones(n, c, h, w)
    for i in range(n):
        r, col = (
            torch.randint(1, h - 2, (1,), generator=g).item(),
            torch.randint(1, w - 2, (1,), generator=g).item(),
        )
        train[i, :, r : r + 2, col : col + 2] = torch.rand(c, 2, 2, generator=g) * 2 - 1
    train[n - 1] = train[0]
    return train


@pytest.fixture
def fresh_dedup():
    dedup.clear_cache()
    yield
    dedup.clear_cache()


@pytest.mark.parametrize(
    "machine,boundary", [("els", "circular"), ("els", "zeros"), ("bbels", "zeros")]
)
@pytest.mark.parametrize("p,c,ab", [(3, 1, 0.3), (3, 3, 0.9), (5, 1, 0.9), (1, 1, 0.6)])
def test_merged_duplicates_match_unmerged_and_reference(machine, boundary, p, c, ab, fresh_dedup):
    n, h, w = 7, 9, 8
    train = _mostly_constant(p + c, n, c, h, w)
    g = torch.Generator().manual_seed(1)
    x = math.sqrt(ab) * train[[1, 3]] + math.sqrt(1 - ab) * torch.randn(2, c, h, w, generator=g)
    merged = machine_denoise(x, ab, train, machine, p, boundary)
    (entry,) = [e for _, e in dedup._cache.values()]
    assert entry is not None and entry.counts.numel() < 0.75 * n * (h - p + 1) * (w - p + 1)
    again = machine_denoise(x, ab, train, machine, p, boundary, chunk=5)  # cached, re-chunked
    dedup.clear_cache()
    with routes.override(merge=False):
        plain = machine_denoise(x, ab, train, machine, p, boundary)
    assert not dedup._cache  # never asked for merged keys
    ref = reference_denoise(x.numpy(), ab, train.numpy(), machine, p, boundary)
    for out in (merged, again, plain):
        assert_matches(out, ref)
    for field in ("x0", "weight", "entropy"):
        torch.testing.assert_close(getattr(merged, field), getattr(plain, field), atol=2e-5, rtol=0)


def test_merged_duplicates_report_the_first_occurrence(fresh_dedup):
    # x equals a training image and abar -> 1: every interior pixel's best candidates are
    # exact copies (image 0 and its duplicate, and the many background windows); the
    # reference names the first in image-major order, and so must the merged stream.
    # (Border pixels of ELS have no exact copy, so their winners are no ties.)
    train = _mostly_constant(4, 6, 1, 9, 8)
    x = train[5:6].clone()
    inner = (slice(None), slice(1, -1), slice(1, -1))
    for machine, boundary in (("els", "circular"), ("bbels", "zeros")):
        out = machine_denoise(x, 1.0, train, machine, 3, boundary)
        ref = reference_denoise(x.numpy(), 1.0 - 1e-9, train.numpy(), machine, 3, boundary)
        np.testing.assert_array_equal(out.source_index.numpy()[inner], ref["source_index"][inner])
        np.testing.assert_array_equal(out.source_yx.numpy()[inner], ref["source_yx"][inner])
    assert all(e is not None for _, e in dedup._cache.values())


def test_merge_cache_follows_in_place_changes(fresh_dedup):
    train = _mostly_constant(5, 6, 1, 9, 8)
    x = 0.5 * train[[2]] + 0.8 * torch.randn(1, 1, 9, 8, generator=torch.Generator().manual_seed(2))
    machine_denoise(x, 0.3, train, "els", 3, "circular")
    train[3] = torch.rand(1, 9, 8, generator=torch.Generator().manual_seed(3))  # bumps _version
    out = machine_denoise(x, 0.3, train, "els", 3, "circular")
    assert_matches(out, reference_denoise(x.numpy(), 0.3, train.numpy(), "els", 3, "circular"))
    other = train.clone()  # same contents, another tensor: its own entry, same answer
    torch.testing.assert_close(machine_denoise(x, 0.3, other, "els", 3, "circular").x0, out.x0)


@pytest.mark.parametrize("p,c", [(1, 1), (3, 1), (3, 3), (5, 2)])
def test_window_hashes_group_exactly_the_equal_windows(p, c):
    # Quantised pixels (as in MNIST) with a constant background: many windows repeat.
    # Windows with one hash must be equal and equal windows must share one hash, in the
    # same image-major order as the unfolded windows.
    g = torch.Generator().manual_seed(10 * p + c)
    train = (torch.randint(0, 4, (9, c, 10, 11), generator=g).float() / 3) * 2 - 1
    train[:, :, :6] = -1.0
    across = torch.randn(p, generator=g, dtype=torch.float64).tolist()
    down = torch.randn(c, p, generator=g, dtype=torch.float64).tolist()
    hashes = dedup._hashes(train, across, down)
    windows = dedup._windows(train, p)  # [n * Kp, D]
    _, by_window = torch.unique(windows, dim=0, return_inverse=True)
    _, by_hash = torch.unique(hashes, return_inverse=True)
    assert by_window.max() < windows.shape[0] - 1  # there are repeats to find
    # the two partitions are the same: each window group maps to one hash group and back
    pairs = torch.unique(torch.stack([by_window, by_hash]), dim=1)
    assert pairs.shape[1] == int(by_window.max()) + 1 == int(by_hash.max()) + 1


def test_a_hash_collision_leaves_the_candidates_unmerged(fresh_dedup, monkeypatch):
    # Every window hashing alike must not merge different windows: the check against
    # each group's first member turns merging off.
    train = _mostly_constant(4, 6, 1, 9, 8)
    monkeypatch.setattr(dedup, "_hashes", lambda imgs, a, d: torch.zeros(
        imgs.shape[0] * (imgs.shape[2] - len(a) + 1) * (imgs.shape[3] - len(a) + 1),
        dtype=torch.float64,
    ))  # fmt: skip
    assert dedup._merge(train, 3) is None


@pytest.mark.parametrize("part_windows,chunk_elements", [(1 << 22, 1 << 22), (40, 900)])
def test_a_merge_names_every_distinct_window_at_its_first_occurrence(
    part_windows, chunk_elements, monkeypatch
):
    # Against brute force over the unfolded windows, built whole and built in parts over
    # chunks of two images (groups met in several chunks and parts).
    monkeypatch.setattr(dedup, "_PART_WINDOWS", part_windows)
    monkeypatch.setattr(dedup, "_HASH_CHUNK_ELEMENTS", chunk_elements)
    train = _mostly_constant(6, 9, 1, 9, 8)
    found = dedup._merge(train, 3)
    windows = dedup._windows(train, 3)
    _, inverse, counts = torch.unique(windows, dim=0, return_inverse=True, return_counts=True)
    first = torch.full((counts.numel(),), len(windows)).scatter_reduce_(
        0, inverse, torch.arange(len(windows)), "amin"
    )
    order = first.argsort()
    assert found is not None
    assert found.origin.tolist() == first[order].tolist()
    assert found.counts.tolist() == counts[order].float().tolist()
    keys, values = dedup.window_columns(train, found.origin, 3)
    torch.testing.assert_close(keys, windows[found.origin.long()].T, rtol=0, atol=0)
    centres = train[:, :, 1:-1, 1:-1].reshape(9, 1, -1).transpose(1, 2).reshape(-1, 1)
    torch.testing.assert_close(values, centres[found.origin.long()].T, rtol=0, atol=0)


def test_random_data_is_not_merged(fresh_dedup):
    x, train = random_case(6, 1, 9, 8, 6, 1, 0.5)
    machine_denoise(x, 0.5, train, "els", 3, "circular")
    assert [e for _, e in dedup._cache.values()] == [None]


@pytest.mark.parametrize(
    "machine,boundary,p,pixel",
    [
        ("bbels", "zeros", 3, (0, 4)),
        ("bbels", "zeros", 5, (0, 0)),
        ("bbels", "zeros", 3, (3, 0)),
        ("els", "circular", 3, (2, 3)),
        ("ls", "zeros", 5, (6, 8)),
        ("ideal", "zeros", 3, (1, 1)),
    ],
)
def test_top_candidates_match_reference(machine, boundary, p, pixel):
    x, train = random_case(21, 1, 7, 9, 8, 1, 0.9)
    got = top_candidates(x[0], 0.9, train, machine, p, boundary, pixel=pixel, k=5)
    want = reference_top(x[0].numpy(), 0.9, train.numpy(), machine, p, boundary, pixel, 5)
    assert len(got) == len(want)
    for (gi, gyx, gw), (wi, wyx, ww) in zip(got, want, strict=True):
        assert abs(gw - ww) < 1e-5
        if gw > 1e-3:
            assert (gi, gyx) == (wi, tuple(wyx))
    weights = [wt for _, _, wt in got]
    assert weights == sorted(weights, reverse=True)


@pytest.mark.parametrize(
    "machine,boundary,p,c,pixel",
    [
        ("bbels", "zeros", 5, 3, (4, 4)),  # interior
        ("bbels", "zeros", 3, 1, (6, 2)),  # an edge row
        ("els", "circular", 5, 3, (0, 8)),
        ("els", "zeros", 3, 1, (3, 3)),
        ("ideal", "zeros", 3, 3, (0, 0)),
    ],
)
def test_top_candidates_in_blocks_of_images_match_reference(
    monkeypatch, machine, boundary, p, c, pixel
):
    # Blocks of 3 images (the inspection's products at N = 60,000 are 4,096 each): the
    # running top k and log-sum-exp carry across blocks; colour windows too.
    monkeypatch.setattr(api, "_INSPECT_IMAGES", 3)
    x, train = random_case(22 + p + c, c, 7, 9, 11, 1, 0.95)
    got = top_candidates(x[0], 0.95, train, machine, p, boundary, pixel=pixel, k=6)
    want = reference_top(x[0].numpy(), 0.95, train.numpy(), machine, p, boundary, pixel, 6)
    assert len(got) == len(want) == 6
    for (gi, gyx, gw), (wi, wyx, ww) in zip(got, want, strict=True):
        assert abs(gw - ww) < 1e-5
        if gw > 1e-3:
            assert (gi, gyx) == (wi, tuple(wyx))


@pytest.mark.parametrize("machine,boundary", COMBOS + [("ideal", "zeros")])
@pytest.mark.parametrize("p", [1, 3, 5, 9])
def test_logit_count_matches_the_table(machine, boundary, p):
    h, w, n = 7, 9, 3
    train = np.zeros((n, 1, h, w))
    if machine == "ideal":
        expected = n
    else:
        expected = sum(
            len(candidates(train, machine, p, boundary, r, c)) for r in range(h) for c in range(w)
        )
    assert logit_count(machine, p, boundary, h, w, n) == expected


def _bad(**over):
    x, train = random_case(0, 1, 6, 6, 3, 1, 0.5)
    args = dict(x=x, abar=0.5, train=train, machine="els", patch_size=3, boundary="zeros")
    args.update(over)
    return args


@pytest.mark.parametrize(
    "over,match",
    [
        (dict(patch_size=4), "odd"),
        (dict(patch_size=0), "odd"),
        (dict(patch_size=-3), "odd"),
        (dict(machine="elss"), "unknown machine"),
        (dict(boundary="reflect"), "unknown boundary"),
        (dict(machine="bbels", boundary="circular"), "bbels"),
        (dict(train=torch.zeros(3, 3, 6, 6)), "channels"),
        (dict(train=torch.zeros(3, 1, 6, 7)), "channels and image size"),
        (dict(train=torch.zeros(0, 1, 6, 6)), "empty"),
        (dict(x=torch.full((1, 1, 6, 6), math.nan)), "NaN"),
        (dict(abar=0.0), r"\(0, 1\]"),
        (dict(abar=1.5), r"\(0, 1\]"),
        (dict(abar=math.nan), r"\(0, 1\]"),
    ],
)
def test_bad_arguments_raise_clear_errors(over, match):
    with pytest.raises(ValueError, match=match):
        machine_denoise(**_bad(**over))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x, train = random_case(4, 1, 32, 32, 50, 2, 0.7)
    for machine in ("els", "bbels"):
        cpu = machine_denoise(x, 0.7, train, machine, 5, "zeros")
        gpu = machine_denoise(x.cuda(), 0.7, train, machine, 5, "zeros")
        assert gpu.x0.is_cuda
        torch.testing.assert_close(gpu.x0.cpu(), cpu.x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "boundary,p,c,h,w", [("circular", 9, 1, 3, 4), ("zeros", 7, 3, 5, 6), ("circular", 5, 2, 6, 5)]
)
def test_ls_streams_training_chunks_and_wraps_wide_windows(monkeypatch, boundary, p, c, h, w):
    # A chunk of two training images (so the running softmax is rebased many times) and
    # windows wider than the image (d > H wraps the circular image more than once).
    monkeypatch.setattr(local, "_CHUNK_ELEMENTS", 3 * h * w * 2)
    x, train = random_case(5 + p, c, h, w, 11, 3, 0.6)
    out = machine_denoise(x, 0.6, train, "ls", p, boundary)
    assert_matches(out, reference_denoise(x.numpy(), 0.6, train.numpy(), "ls", p, boundary))


@pytest.mark.parametrize("machine,boundary,b", [("els", "circular", 1), ("bbels", "zeros", 3)])
def test_parallel_query_blocks_match_reference(monkeypatch, machine, boundary, b):
    # With several CPU threads every tensor call of a tile is split between them, and
    # tiles are wider; a small query block makes several blocks share each key chunk.
    x, train = random_case(21, 2, 9, 8, 13, b, 0.5)
    torch.set_num_threads(3)
    monkeypatch.setattr(api, "_QUERY_BLOCK", 16)
    try:
        out = machine_denoise(x, 0.5, train, machine, 3, boundary, chunk=7)
    finally:
        torch.set_num_threads(1)
    assert torch.get_num_threads() == 1
    assert_matches(out, reference_denoise(x.numpy(), 0.5, train.numpy(), machine, 3, boundary))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p, c, h, w", [(1, 1, 4, 5), (3, 2, 7, 6), (5, 3, 9, 12), (7, 1, 7, 7)])
def test_window_norms_are_sums_of_squares_of_every_window(p, c, h, w, dtype):
    from ccdm_gui.core.machines.keys import _window_norms

    g = torch.Generator().manual_seed(p * 100 + h)
    slab = (torch.rand(3, c, h, w, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    got = _window_norms(slab, p)
    assert got.shape == (3, 1, h - p + 1, w - p + 1) and got.dtype == dtype
    for i in range(h - p + 1):
        for j in range(w - p + 1):
            want = (slab[:, :, i : i + p, j : j + p].double() ** 2).sum((1, 2, 3))
            torch.testing.assert_close(got[:, 0, i, j].double(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("p, c, h, w", [(3, 1, 7, 9), (5, 3, 9, 8), (7, 2, 11, 10)])
def test_strip_keys_are_the_edge_windows_in_strip_order(p, c, h, w):
    # An edge strip's keys are one strided view of unfolded image rows: every key must
    # be the zero-padded window at its kpos, flattened (P, C, P) (transposed for a
    # column strip), with its squared norm, -1 and its centre pixel beside it.
    from ccdm_gui.core.machines.candidates import build_problems
    from ccdm_gui.core.machines.keys import strip_chunk, strip_keys
    from ccdm_gui.core.machines.patches import pad_images

    d = p // 2
    g = torch.Generator().manual_seed(p + 10 * c)
    train = torch.rand(4, c, h, w, generator=g) * 2 - 1
    padded = pad_images(train, d, "zeros")
    strips = [pr for pr in build_problems("bbels", p, "zeros", h, w, "cpu") if strip_keys(pr)]
    assert sorted(pr.layout for pr in strips) == ["cols", "cols", "rows", "rows"]
    for pr in strips:
        chunk = strip_chunk(train, pr, p, 0)
        kp = pr.keys_per_image
        assert chunk.keys.shape == (pr.groups, c * p * p, 4 * kp)
        for gi in range(pr.groups):
            for i in range(4):
                for k in range(kp):
                    r, col = pr.kpos[gi, k].tolist()
                    win = padded[i, :, r : r + p, col : col + p]  # padded coords: +d
                    if pr.layout == "cols":
                        win = win.transpose(1, 2)
                    want = win.permute(1, 0, 2).reshape(-1)
                    j = i * kp + k
                    torch.testing.assert_close(chunk.keys[gi, :, j], want)
                    aux = chunk.bank[gi, :, j]
                    torch.testing.assert_close(aux[0], (win**2).sum(), rtol=1e-5, atol=1e-5)
                    assert aux[1] == -1.0
                    torch.testing.assert_close(aux[2:], train[i, :, r, col])


def test_clamp_is_skipped_only_where_no_logit_can_reach_the_floor():
    # The torch route (GPUs, float64, no numba; the compiled passes always clamp). The
    # clamp before exp keeps float32 denormals out; a chunk may skip it only when a norm
    # bound shows every logit minus the shift stays above the floor. Checked against
    # every logit of every chunk, with the shift as it stands after the chunk (the shift
    # only grows, so that is the lowest the logits of the chunk ever were).
    from ccdm_gui.core.machines.limits import FLOOR
    from ccdm_gui.core.machines.stream_torch import TorchStream
    from ccdm_gui.core.machines.streaming import KeyChunk

    g = torch.Generator().manual_seed(3)
    seen = set()
    for d, ab, spread in [(9, 0.5, 1.0), (9, 0.5, 3.0), (49, 0.5, 1.0), (9, 0.99, 1.0)]:
        a, v = math.sqrt(ab), 1 - ab
        ks = a * a / (2 * v)
        q = (torch.rand(1, 40, d, generator=g) * 2 - 1) * (a / v)
        st = TorchStream(q, ks, 1, tile_elements=40 * 16)
        for _ in range(4):
            patches = (torch.rand(1, d, 64, generator=g) * 2 - 1) * spread
            bank = torch.cat([patches, torch.empty(1, 2, 64), patches[:, :1]], 1)
            st.update(KeyChunk(bank, 0, 0, 64))
            psi = patches[0].double()
            logits = q[0].double() @ psi - ks * (psi * psi).sum(0)
            low = (logits - st.m[0].double()[:, None]).min().item()
            if not st._clamp:
                assert low >= FLOOR, (d, ab, spread, low)
            seen.add(st._clamp)
    assert seen == {True, False}


@pytest.mark.parametrize("p, h, w", [(3, 5, 6), (5, 7, 9), (7, 8, 8), (9, 11, 10)])
def test_corner_mosaic_keeps_every_corner_window(p, h, w):
    # A bbELS corner pixel's window, zero padded, must read the same pixels in the
    # mosaic of corner blocks as in the image, even where the blocks overlap (4d > H).
    d = p // 2
    img = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(p))
    pad = F.pad(img, (d, d, d, d))
    mos = F.pad(local.corner_mosaic(img, d), (d, d, d, d))
    near = [*range(d), *range(h - d, h)]
    rows = torch.tensor([r for r in near for c in [*range(d), *range(w - d, w)]])
    cols = torch.tensor([c for r in near for c in [*range(d), *range(w - d, w)]])
    mr, mc = local.mosaic_position(rows, cols, h, w, d)
    for r, c, r2, c2 in zip(rows.tolist(), cols.tolist(), mr.tolist(), mc.tolist(), strict=True):
        assert torch.equal(pad[..., r : r + p, c : c + p], mos[..., r2 : r2 + p, c2 : c2 + p])


@pytest.mark.parametrize("boundary", ["zeros", "circular"])
@pytest.mark.parametrize("p, h, w", [(1, 4, 5), (3, 5, 7), (7, 6, 4), (21, 5, 7)])
def test_window_sums_add_each_pixels_padded_window(boundary, p, h, w):
    img = torch.randn(3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    d = p // 2
    want = torch.zeros_like(img)
    for r in range(h):
        for c in range(w):
            for dr in range(-d, d + 1):
                for dc in range(-d, d + 1):
                    rr, cc = r + dr, c + dc
                    if boundary == "circular":
                        want[:, r, c] += img[:, rr % h, cc % w]
                    elif 0 <= rr < h and 0 <= cc < w:
                        want[:, r, c] += img[:, rr, cc]
    torch.testing.assert_close(local.window_sums(img, p, boundary), want)
