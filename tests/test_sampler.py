"""DDIM sampler and schedule against hand-written references and closed forms."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ccdm_gui.core import sampler
from ccdm_gui.core.schedule import abar, abar_tensor, eps_from_x0, time_grid, x0_from_eps


def ref_abar(t: float) -> float:
    return math.cos(math.pi * t / (2 * 1.008)) ** 2


def gaussian_denoiser(mu: torch.Tensor, s: float):
    """Exact E[x0 | x_t] when every pixel of x0 is N(mu, s^2) independently."""

    def denoise(x: torch.Tensor, t: float) -> torch.Tensor:
        a2 = ref_abar(t)
        a, v = math.sqrt(a2), 1 - a2
        return mu + a * s * s / (a2 * s * s + v) * (x - a * mu)

    return denoise


def reference_ddim(denoise, x: torch.Tensor, n: int) -> torch.Tensor:
    """The update's second form in docs/design.md, written out independently of sampler.py."""
    for i in range(n, 0, -1):
        t, tn = i / n, (i - 1) / n
        x0 = denoise(x, t)
        if tn == 0:
            return x0
        ab, abn = ref_abar(t), ref_abar(tn)
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        r = math.sqrt(abn / ab)
        x = r * x + (math.sqrt(1 - abn) - r * math.sqrt(1 - ab)) * eps
    raise AssertionError("unreachable")


def test_schedule_values():
    assert abar(0.0) == 1.0
    assert f"{abar(1.0):.3e}" == "1.554e-04"
    ts = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.allclose(abar_tensor(ts), torch.tensor([ref_abar(float(t)) for t in ts]).double())
    x, e = torch.randn(3, 4), torch.randn(3, 4)
    x0 = x0_from_eps(x, e, 0.3)
    assert torch.allclose(eps_from_x0(x, x0, 0.3), e, atol=1e-5)
    with pytest.raises(ValueError):
        eps_from_x0(x, x0, 0.0)


def test_grid():
    assert time_grid(5) == [1.0, 0.8, 0.6, 0.4, 0.2]
    assert time_grid(1) == [1.0]
    with pytest.raises(ValueError):
        time_grid(0)
    seen = []

    def record(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    sampler.sample(record, torch.zeros(1, 1, 2, 2), 5)
    assert seen == [1.0, 0.8, 0.6, 0.4, 0.2]


@pytest.mark.parametrize("n", [1, 3, 20])
def test_ddim_matches_hand_written_reference_on_a_gaussian(n):
    mu = torch.linspace(-0.5, 0.5, 16, dtype=torch.float64).reshape(1, 1, 4, 4)
    den = gaussian_denoiser(mu, s=0.3)
    x1 = sampler.initial_noise((2, 1, 4, 4), seed=3).double()
    got = sampler.sample(den, x1, n).final
    assert torch.allclose(got, reference_ddim(den, x1, n), atol=1e-12, rtol=0)


def test_ddim_is_exact_for_a_point_mass():
    # With s = 0 the probability-flow ODE keeps z = (x_t - a mu) / sqrt(v) fixed, and
    # DDIM follows it exactly: every x_t on the grid is known in closed form.
    mu = torch.full((1, 1, 3, 3), 0.25, dtype=torch.float64)
    x1 = sampler.initial_noise((1, 1, 3, 3), seed=1).double()
    traj = sampler.sample(gaussian_denoiser(mu, s=0.0), x1, 10)
    z = (x1 - math.sqrt(ref_abar(1.0)) * mu) / math.sqrt(1 - ref_abar(1.0))
    for st in traj.steps:
        want = math.sqrt(ref_abar(st.t)) * mu + math.sqrt(1 - ref_abar(st.t)) * z
        assert torch.allclose(st.x_t, want, atol=1e-12)
    assert torch.allclose(traj.final, mu, atol=1e-12)


def test_last_step_returns_x0_hat_at_t_one_over_n():
    n = 4
    den = gaussian_denoiser(torch.zeros(1, 1, 2, 2), s=0.5)
    traj = sampler.sample(den, sampler.initial_noise((1, 1, 2, 2), 0), n)
    last = traj.steps[-1]
    assert last.t == 1 / n and len(traj.steps) == n
    assert torch.equal(traj.final, last.x0)
    assert torch.equal(last.x0, den(last.x_t, 1 / n))


def test_same_seed_same_noise():
    a = sampler.initial_noise((2, 1, 8, 8), seed=42)
    assert torch.equal(a, sampler.initial_noise((2, 1, 8, 8), seed=42))
    assert not torch.equal(a, sampler.initial_noise((2, 1, 8, 8), seed=43))
    big = sampler.initial_noise((64, 1, 32, 32), seed=0)
    assert abs(big.mean().item()) < 0.02 and abs(big.std().item() - 1) < 0.02


def test_cancel_between_steps():
    calls, checks = [], []

    def den(x, t):
        calls.append(t)
        return torch.zeros_like(x)

    def should_cancel():
        checks.append(1)
        return len(checks) == 3

    with pytest.raises(sampler.Cancelled):
        sampler.sample(den, torch.zeros(1, 1, 2, 2), 10, should_cancel=should_cancel)
    assert calls == [1.0, 0.9]  # two steps ran whole, the third never started


def test_on_step_and_extra_from_machine_like_denoisers():
    def den(x, t):
        return SimpleNamespace(x0=torch.zeros_like(x), provenance=t)

    seen = []
    traj = sampler.sample(
        den, torch.ones(1, 1, 2, 2), 3, on_step=lambda i, st: seen.append((i, st.t))
    )
    assert seen == [(0, 1.0), (1, 2 / 3), (2, 1 / 3)]
    assert [st.extra.provenance for st in traj.steps] == [1.0, 2 / 3, 1 / 3]
