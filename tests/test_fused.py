"""The streamed routes' states (the compiled fold, foldc.c through native.py; numba's
pass, core/machines/fused.py; torch) against float64 arithmetic."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from routes import STREAMED, resolve

from ccdm_gui.core.machines import fused, native, routes
from ccdm_gui.core.machines.stream_fold import FoldStream
from ccdm_gui.core.machines.stream_numba import NumbaStream
from ccdm_gui.core.machines.streaming import KeyChunk
from ccdm_gui.core.machines.streams import open_stream

COMPILED = ("fold", "fold-avx2", "numba")
_CLASSES = {"fold": FoldStream, "fold-avx2": FoldStream, "numba": NumbaStream}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_exp2_is_accurate_over_the_range_the_pass_uses():
    # Logits reach the exp clamped to [-80, rebase + a little] in base 2.
    v = np.concatenate([np.linspace(-80, 24, 4001), [-0.5, 0.5, 0.0, -1e-7, 1e-7]])
    v = v.astype(np.float32)
    got = np.array([fused.exp2(x) for x in v], dtype=np.float64)
    want = np.exp2(v.astype(np.float64))
    assert np.max(np.abs(got / want - 1)) < 4e-7


def test_exp2_stays_accurate_inlined_in_a_reordering_loop():
    # The pass's loops may reorder float sums; the exp inlined there must not let its
    # range reduction be reordered too (v + 128 would round away fraction bits).
    from numba import njit

    @njit(fastmath=fused._FAST)
    def many(v, out):
        for t in range(v.size):
            out[t] = fused.exp2(v[t])

    v = np.random.default_rng(1).uniform(-80, 24, 20_000).astype(np.float32)
    out = np.empty_like(v)
    many(v, out)
    want = np.exp2(v.astype(np.float64))
    assert np.max(np.abs(out / want - 1)) < 4e-7


@pytest.mark.parametrize("size", [1, 2, 7, 16, 37, 512])
def test_row_max_equals_the_float_maximum(size):
    rng = np.random.default_rng(size)
    for scale in (1e-30, 1.0, 1e30):
        for sign in (-1, 1, 0):
            row = (rng.standard_normal(size) * scale).astype(np.float32)
            if sign:
                row = sign * np.abs(row)
            assert fused._row_max(row) == row.max()
    assert fused._row_max(np.array([-0.0, -1.0], np.float32)) == 0.0
    assert fused._row_max(np.array([-80.0, -60.5, -61.0], np.float32)) == np.float32(-60.5)


def _softmax_reference(q, keys, values, counts, key_scale):
    """Direct float64 softmax over every candidate, a duplicate counted counts[j] times."""
    q, keys, values = q.double(), keys.double(), values.double()
    logits = q @ keys - key_scale * (keys * keys).sum(1, keepdim=True)  # [G, M, K]
    w = torch.exp(logits - logits.amax(-1, keepdim=True)) * counts.double()
    s = w.sum(-1, keepdim=True)
    p = w / s
    entropy = -(p * torch.log(p / counts.double()).nan_to_num()).sum(-1)
    top = logits.argmax(-1)
    weight = torch.gather(p / counts.double(), -1, top[..., None])[..., 0]
    return torch.einsum("gmk,gck->gmc", p, values), top, weight, entropy


@pytest.mark.parametrize("cv", [1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("tile", [7, 64, 10_000])
@pytest.mark.parametrize("margin", [0.0, 20.0])
@pytest.mark.parametrize("route", STREAMED)
def test_streamed_tiles_match_a_direct_softmax(cv, weighted, tile, margin, route):
    # Chunks come in order of growing logit scale, so later tiles beat the shift by far
    # more than the rebase margin; the first chunk sets it from nothing. With no margin
    # every improvement moves the shift by a little, and the kept sums must follow.
    # The compiled fold has no tiles but blocks of keys: tile sets their size.
    g = torch.Generator().manual_seed(cv * 100 + tile + weighted)
    # 100 queries: 7 lane blocks, several per thread.
    groups, m, d = 2, {7: 5, 64: 37, 10_000: 100}[tile], 6
    q = torch.randn(groups, m, d, generator=g)
    st = open_stream(q, 0.4, cv, tile_elements=tile * groups * m, route=resolve(route))
    st.rebase = margin
    if isinstance(st, FoldStream):
        st.block_floats = tile * (6 + 2 + cv)
    allk, allv, allc = [], [], []
    for i, (scale, k) in enumerate([(0.5, 9), (3.0, 40), (8.0, 23)]):
        keys = torch.randn(groups, d, k, generator=g) * scale
        vals = torch.randn(groups, cv, k, generator=g)
        counts = torch.randint(1, 4, (k,), generator=g).float() if weighted else None
        bank = torch.cat([keys, torch.empty(groups, 2, k), vals], 1)
        origin = torch.arange(k) if weighted else None
        st.update(KeyChunk(bank, i, 0, k, counts, origin))
        allk.append(keys)
        allv.append(vals)
        allc.append(counts if weighted else torch.ones(k))
    res = st.result()
    keys, vals, counts = torch.cat(allk, -1), torch.cat(allv, -1), torch.cat(allc)
    values, top, weight, entropy = _softmax_reference(q, keys, vals, counts, 0.4)
    torch.testing.assert_close(res.values.double(), values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.weight.double(), weight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.entropy.double(), entropy, atol=1e-5, rtol=1e-5)
    # chunk i holds keys of image i (kpos_block = its length): back to one index
    sizes = torch.tensor([9, 40, 23])
    flat = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])[res.best_image]
    assert torch.equal(flat + res.best_kpos, top)


@pytest.mark.parametrize("route", STREAMED)
def test_tiny_weights_vanish_instead_of_going_denormal(route):
    # Logits far below the row's best contribute nothing (and must not turn into NaN or
    # slow denormals): one key dominates by 1000 nats.
    q = torch.ones(1, 2, 1)
    keys = torch.tensor([[[0.0, 1000.0, -1000.0, 3.0]]])
    bank = torch.cat([keys, torch.empty(1, 2, 4), torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])], 1)
    st = open_stream(q, 0.0, 1, route=resolve(route))
    st.update(KeyChunk(bank, 0, 0, 4))
    res = st.result()
    assert torch.equal(res.best_kpos, torch.tensor([[1, 1]]))
    torch.testing.assert_close(res.values, torch.full((1, 2, 1), 2.0))
    torch.testing.assert_close(res.weight, torch.ones(1, 2))
    assert torch.all(res.entropy.abs() < 1e-6)
    assert math.isfinite(float(res.entropy.sum()))


@pytest.mark.parametrize("route", COMPILED)
def test_tiles_of_negligible_candidates_are_skipped(route):
    # A second chunk whose every logit lies ~1400 nats below the winner's adds nothing;
    # its values are NaN, so a result without NaN shows those rows were never read.
    q = torch.ones(1, 3, 1)
    near = torch.tensor([[[2.0, 1.0]]])
    far = torch.full((1, 1, 50), -1000.0)
    st = open_stream(q, 0.1, 1, tile_elements=3 * 16, route=resolve(route))
    assert isinstance(st, _CLASSES[route])
    bank = torch.cat([near, torch.empty(1, 2, 2), torch.tensor([[[5.0, 7.0]]])], 1)
    st.update(KeyChunk(bank, 0, 0, 2))
    st.update(KeyChunk(torch.cat([far, torch.empty(1, 2, 50), far * math.nan], 1), 1, 0, 50))
    res = st.result()
    l1, l2 = 2.0 - 0.4, 1.0 - 0.1
    w1 = 1 / (1 + math.exp(l2 - l1))
    torch.testing.assert_close(res.values, torch.full((1, 3, 1), 5 * w1 + 7 * (1 - w1)))
    assert torch.equal(res.best_image, torch.zeros(1, 3, dtype=torch.long))


def test_a_pass_that_fails_to_compile_leaves_the_torch_route(monkeypatch):
    # A broken numba install must cost speed, not the computation: numba's route fails
    # its check, and the next allowed one runs.
    from ccdm_gui.core.machines import machine_denoise

    def broken():
        raise RuntimeError("no LLVM here")

    monkeypatch.setattr(fused, "_ready", False)
    monkeypatch.setattr(fused, "reason", "")
    monkeypatch.setattr(fused, "_warm_up", broken)
    g = torch.Generator().manual_seed(2)
    train = torch.rand(5, 1, 6, 7, generator=g) * 2 - 1
    x = torch.randn(1, 1, 6, 7, generator=g)
    with routes.override("numba", "torch"), routes.watch() as taken:
        with pytest.warns(UserWarning, match="no LLVM here"):
            out = machine_denoise(x, 0.6, train, "els", 3, "circular")
    assert taken == [routes.Route.TORCH]
    assert not fused.available() and "no LLVM here" in fused.reason
    monkeypatch.undo()
    assert fused.available()
    torch.testing.assert_close(out.x0, machine_denoise(x, 0.6, train, "els", 3, "circular").x0)


_FEATURES_PROBE = (
    "import os; from ccdm_gui.core.machines import fused; "
    "print(os.environ.get('NUMBA_CPU_FEATURES', 'unset')[-20:])"
)


def _probe(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    env.update(env_extra)
    run = subprocess.run(
        [sys.executable, "-c", _FEATURES_PROBE], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_wide_vectors_only_where_the_cpu_has_them_and_the_user_did_not_choose():
    import llvmlite.binding as llvm

    has_avx512 = bool(llvm.get_host_cpu_features().get("avx512f"))
    found = _probe({})
    if has_avx512:
        assert found.endswith(",-prefer-256-bit")
    else:
        assert found == "unset"
    assert _probe({"NUMBA_CPU_FEATURES": "+sse2"}) == "+sse2"


def test_the_pass_is_compiled_with_512_bit_vectors_on_avx512():
    import llvmlite.binding as llvm

    own = os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES")
    if not llvm.get_host_cpu_features().get("avx512f") or own:
        pytest.skip("this CPU has no AVX-512 (or the user chose numba's CPU features)")

    # Compiled here, not loaded from numba's cache (whose functions keep no assembly).
    @fused.njit(fastmath=fused._FAST, cache=False)
    def total(x):
        acc = x[0] - x[0]
        for t in range(x.size):
            acc += fused.exp2(x[t])
        return acc

    total(np.zeros(64, np.float32))
    asm = "".join(total.inspect_asm().values())
    assert "zmm" in asm


def test_the_compiled_fold_runs_the_widest_code_of_this_cpu():
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    want = "AVX-512" if features.get("avx512f") and features.get("avx512dq") else "AVX2"
    assert native.isa_name(native.best_isa()) == want
    assert resolve("fold").isa == native.best_isa()


def test_the_avx2_code_matches_the_avx512_code():
    # Both codes of the kernel on one problem with several blocks of keys and a query
    # count that is no multiple of either lane count.
    g = torch.Generator().manual_seed(9)
    q = torch.randn(3, 45, 9, generator=g)
    keys = torch.randn(3, 9, 300, generator=g)
    bank = torch.cat([keys, torch.empty(3, 2, 300), torch.randn(3, 3, 300, generator=g)], 1)
    results = []
    for route in ("fold", "fold-avx2"):
        st = open_stream(q, 0.3, 3, route=resolve(route))
        assert isinstance(st, FoldStream)
        st.block_floats = 64 * 14
        st.update(KeyChunk(bank.clone(), 0, 0, 300))
        results.append(st.result())
    a, b = results
    torch.testing.assert_close(a.values, b.values, atol=2e-6, rtol=2e-6)
    torch.testing.assert_close(a.entropy, b.entropy, atol=2e-6, rtol=2e-6)
    assert torch.equal(a.best_kpos, b.best_kpos)


def test_an_install_without_the_compiled_fold_says_so_and_runs(monkeypatch):
    # No C compiler at install time: the extension is missing, the machines take numba.
    for name in ("_lib", "_best_isa", "reason"):
        monkeypatch.setattr(native, name, getattr(native, name))
    import ccdm_gui.core.machines as machines

    monkeypatch.setitem(sys.modules, "ccdm_gui.core.machines._foldc", None)
    monkeypatch.delattr(machines, "_foldc", raising=False)
    native._lib = None
    native._load()
    assert not native.available() and native.best_isa() == 0 and "not built" in native.reason
    with routes.watch() as taken:
        st = open_stream(torch.zeros(1, 4, 9), 0.5, 1)
    assert isinstance(st, NumbaStream) and taken == [routes.Route.NUMBA]
