"""Counts of candidates identical to the winning patch, against a literal enumeration of
every pixel's candidates (machine_reference.candidates) on small images with many
repeated patches, for every machine and boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from machine_reference import _pad, _softmax, _window, candidates

from ccdm_gui.core.machines import machine_denoise, sharing
from ccdm_gui.core.machines.sharing import Sharing

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def repetitive_case(seed: int, n: int = 5, c: int = 1, h: int = 7, w: int = 6, b: int = 2):
    """Images of mostly -1 with a few blobs of +1 (so blank and full patches repeat,
    within and across images), and noisy queries near them at a low noise level."""
    g = torch.Generator().manual_seed(seed)
    train = torch.where(torch.rand(n, c, h, w, generator=g) < 0.3, 1.0, -1.0)
    train[0] = -1.0  # one all-blank image: its patches tie with everyone's background
    if n > 3:
        train[3] = train[1]  # an exact duplicate image
    x = 0.95 * train[torch.randint(0, n, (b,), generator=g)]
    x = x + 0.3 * torch.randn(b, c, h, w, generator=g)
    return x.double(), train.double()


def reference_counts(x, ab, train, machine, p, boundary, src, yx):
    """(identical candidates, images holding them, their total softmax weight) per pixel,
    by enumerating each pixel's candidate list."""
    tr = train.numpy()
    b, _, h, w = x.shape
    count = np.zeros((b, h, w), dtype=np.int64)
    images = np.zeros((b, h, w), dtype=np.int64)
    share = np.zeros((b, h, w))
    a, v = np.sqrt(ab), 1.0 - ab
    for r in range(h):
        for c in range(w):
            if machine == "ideal":
                cands = [(i, (r, c), tr[i]) for i in range(len(tr))]
            else:
                cands = candidates(tr, machine, p, boundary, r, c)
            patches = np.stack([cp for _, _, cp in cands])
            for bi in range(b):
                if machine == "ideal":
                    q = x[bi].numpy()
                else:
                    q = _window(_pad(x[bi].numpy(), p // 2, boundary), r, c, p)
                wts = _softmax(-np.sum((q[None] - a * patches) ** 2, axis=(1, 2, 3)) / (2 * v))
                win = [
                    k
                    for k, (i, pos, _) in enumerate(cands)
                    if i == src[bi, r, c] and (machine == "ideal" or pos == tuple(yx[bi, r, c]))
                ]
                assert len(win) == 1
                same = [k for k in range(len(cands)) if np.array_equal(patches[k], patches[win[0]])]
                count[bi, r, c] = len(same)
                images[bi, r, c] = len({cands[k][0] for k in same})
                share[bi, r, c] = wts[same].sum()
    return count, images, share


CASES = [
    ("els", 3, "zeros"),
    ("els", 3, "circular"),
    ("els", 5, "circular"),
    ("bbels", 3, "zeros"),
    ("bbels", 5, "zeros"),
    ("ls", 3, "zeros"),
    ("ls", 3, "circular"),
    ("els", 7, "zeros"),  # P >= the image: the machine is LS
    ("ideal", 3, "zeros"),
]


@pytest.fixture(params=["compiled", "torch"])
def pass_kind(request, monkeypatch):
    """Both versions of the counting pass: numba's, and the chunked torch one that runs
    where numba cannot load (chunks of two images, so several chunks are met)."""
    if request.param == "torch":
        monkeypatch.setattr(sharing, "FORCE_TORCH", True)
        monkeypatch.setattr(sharing, "_CHUNK_IMAGES", 2)
    return request.param


@pytest.mark.parametrize(("machine", "p", "boundary"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_counts_match_a_literal_enumeration(machine, p, boundary, seed, pass_kind):
    ab = 0.9
    x, train = repetitive_case(seed)
    out = machine_denoise(x, ab, train, machine=machine, patch_size=p, boundary=boundary)
    src, yx = out.source_index.numpy(), out.source_yx.numpy()
    count, images = Sharing(train, machine, boundary).counts(src, yx, p)
    want_count, want_images, share = reference_counts(x, ab, train, machine, p, boundary, src, yx)
    np.testing.assert_array_equal(count, want_count)
    np.testing.assert_array_equal(images, want_images)
    # Identical patches hold equal weights: the winner's weight times the count is the
    # weight of its patch, summed over all copies.
    np.testing.assert_allclose(out.weight.numpy() * count, share, rtol=1e-6, atol=1e-9)
    # The cases exercise what the counts are for: ties across images, and within one
    # image where an image holds several candidates (not LS: one patch per image).
    assert (images > 1).any()
    if machine in ("els", "bbels") and p == 3:
        assert (count > images).any()


def test_answers_are_reused_across_steps(pass_kind):
    x, train = repetitive_case(2)
    counter = Sharing(train, "bbels", "zeros")
    out = machine_denoise(x, 0.5, train, machine="bbels", patch_size=3, boundary="zeros")
    first = counter.counts(out.source_index, out.source_yx, 3)
    assert counter.passes == 1
    again = counter.counts(out.source_index, out.source_yx, 3)
    assert counter.passes == 1  # every winner already answered: no pass
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # a step with new winners makes one more pass, and its answers match a fresh count
    out = machine_denoise(x, 0.9, train, machine="bbels", patch_size=3, boundary="zeros")
    later = counter.counts(out.source_index, out.source_yx, 3)
    fresh = Sharing(train, "bbels", "zeros").counts(out.source_index, out.source_yx, 3)
    for a, b in zip(later, fresh, strict=True):
        np.testing.assert_array_equal(a, b)


def test_parts_of_the_training_set_add_up(monkeypatch):
    """The compiled pass splits the images into runs, one per thread: an image's windows
    meet one run only, so the runs' image counts add up to the whole set's."""
    x, train = repetitive_case(3, n=7)
    out = machine_denoise(x, 0.7, train, machine="els", patch_size=3, boundary="circular")
    one = Sharing(train, "els", "circular").counts(out.source_index, out.source_yx, 3)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    three = Sharing(train, "els", "circular").counts(out.source_index, out.source_yx, 3)
    for a, b in zip(one, three, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (one[1] > 1).any()
