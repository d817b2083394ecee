"""Cancelling inside a machine step: the machines stop at their own pauses (chunks of
keys, runs of training images, parts of a merge), not only between sampler steps, and
leave nothing half-made behind."""

from __future__ import annotations

import pytest
import torch
from machine_reference import random_case
from routes import only

from ccdm_gui.core import cancel
from ccdm_gui.core.machines import dedup, machine_denoise, native, windowsums
from ccdm_gui.core.sampler import Cancelled, sample


class AskAfter:
    """A cancel check that says stop from its ``n``-th question on, counting them."""

    def __init__(self, n: int):
        self.n, self.asked = n, 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked >= self.n


def _first_step_cancelled(denoiser, x) -> AskAfter:
    # Question 1 is the sampler's, before the first step; from question 2 on the answer
    # is stop, which only a pause inside the step can hear before the step ends.
    ask, steps = AskAfter(2), []
    with pytest.raises(Cancelled):
        sample(denoiser, x, 3, on_step=lambda i, s: steps.append(i), should_cancel=ask)
    assert steps == [] and ask.asked == 2
    return ask


@pytest.mark.parametrize("route", ["torch", "fold"])
def test_streamed_route_stops_between_chunks_of_keys(route):
    if route == "fold" and not native.available():
        pytest.skip("needs the compiled fold")
    x, train = random_case(1, 1, 10, 10, 30, 1, 0.5)
    with only(route) as taken:
        _first_step_cancelled(
            lambda xt, t: machine_denoise(xt, 0.5, train, "els", 3, "circular", chunk=50), x
        )
    assert taken


@pytest.mark.skipif(not native.available(), reason="needs the compiled fold")
def test_window_sums_stop_between_runs_of_images(monkeypatch):
    monkeypatch.setattr(windowsums, "IMAGES_PER_CALL", 1)
    x, train = random_case(2, 1, 12, 12, 100, 1, 0.5)
    with only("window-sums") as taken:
        _first_step_cancelled(lambda xt, t: machine_denoise(xt, 0.5, train, "bbels", 7), x)
    assert taken


def test_a_cancelled_merge_is_not_cached(monkeypatch):
    # Images with repeated patches (so they merge), in several chunks of the merge's pass.
    monkeypatch.setattr(dedup, "_HASH_CHUNK_ELEMENTS", 1 << 10)
    train = torch.rand(200, 1, 10, 10, generator=torch.Generator().manual_seed(4)) > 0.8
    train = train.float() * 2 - 1
    dedup.clear_cache()
    with cancel.checking(AskAfter(1)), pytest.raises(Cancelled):
        dedup.unique_valid_keys(train, train, 3)
    assert len(dedup._cache) == 0
    # The next ask, not cancelled, builds it whole.
    assert dedup.unique_valid_keys(train, train, 3) is not None


def test_outside_a_sampler_nothing_stops():
    x, train = random_case(3, 1, 8, 8, 10, 1, 0.5)
    cancel.check()  # no question set for this thread
    out = machine_denoise(x, 0.5, train, "els", 3, "circular", chunk=5)
    assert out.x0.shape == x.shape
