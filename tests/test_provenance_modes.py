"""The patch-mosaic and effective-candidates modes, pixel by pixel, against what a literal
enumeration of each pixel's candidates says (machine_reference, test_sharing)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from machine_reference import reference_denoise
from test_sharing import reference_counts, repetitive_case

from ccdm_gui.core import provenance
from ccdm_gui.core.machines import machine_denoise
from ccdm_gui.core.machines.sharing import Sharing
from ccdm_gui.core.palette import categorical_colors, colormap_lut
from ccdm_gui.core.spec import MachineTrajectory

pytestmark = pytest.mark.usefixtures("one_torch_thread")
AB = 0.9


def one_step(machine: str, p: int, boundary: str, seed: int = 0):
    """A one-step machine trajectory of the first noisy image, with its counts, and the
    reference's (patch weight, images sharing the patch, entropy) per pixel."""
    x, train = repetitive_case(seed)
    x = x[:1]
    out = machine_denoise(x, AB, train, machine=machine, patch_size=p, boundary=boundary)
    count, images = Sharing(train, machine, boundary).counts(out.source_index, out.source_yx, p)
    src, yx = out.source_index.numpy(), out.source_yx.numpy()
    _, ref_images, share = reference_counts(x, AB, train, machine, p, boundary, src, yx)
    ref = reference_denoise(x, AB, train, machine, p, boundary)
    n = len(train)
    traj = MachineTrajectory(
        t=np.array([0.5]),
        patch_size=np.array([p]),
        x_t=x.numpy().astype(np.float32),
        x0=out.x0.numpy().astype(np.float32),
        source_index=src,
        source_yx=yx,
        weight=out.weight.numpy().astype(np.float32),
        entropy=out.entropy.numpy().astype(np.float32),
        final=out.x0[0].numpy().astype(np.float32),
        train_indices=np.arange(100, 100 + n),
        shared_count=count,
        shared_images=images,
    )
    return traj, share[0], ref_images[0], ref["entropy"][0]


# Seeds whose first image has both generic and single-source pixels.
@pytest.mark.parametrize(
    ("machine", "p", "boundary", "seed"),
    [("bbels", 3, "zeros", 4), ("els", 3, "circular", 3), ("ls", 3, "zeros", 0)],
)
def test_mosaic_colours_are_the_source_faded_by_its_confidence(machine, p, boundary, seed):
    traj, share, images, entropy = one_step(machine, p, boundary, seed)
    f = provenance.Frame(traj, 0, machine)
    rgb = provenance.mode("mosaic").colour(f)
    h, w = share.shape
    dark = np.array(provenance.DARK, dtype=float)
    top = provenance.entropy_limit(traj, machine)
    for r in range(h):
        for c in range(w):
            if images[r, c] > 1:
                base = np.array(provenance.GENERIC, dtype=float)
            else:
                base = categorical_colors(np.array([traj.source_index[0, r, c]]))[0].astype(float)
            # The entropy with the winner's copies merged into one candidate.
            merged = entropy[r, c] - share[r, c] * math.log(traj.shared_count[0, r, c])
            conf = min(1.0, max(0.0, 1 - merged / top))
            s = provenance.FLOOR + (1 - provenance.FLOOR) * conf
            want = dark + (base - dark) * s
            assert np.abs(rgb[r, c].astype(float) - want).max() <= 1.0, (r, c)
    # Both kinds are on screen: generic patches and single sources.
    assert (images > 1).any() and (images == 1).any()
    # The key names the generic range and the sources leading most non-generic pixels.
    entries = provenance.mode("mosaic").legend(f).colors
    labels = [label for label, _ in entries]
    shared = images[images > 1]
    lo, hi = int(shared.min()), int(shared.max())
    assert labels[0] == f"generic (in {lo}-{hi} images)" if lo < hi else f"generic (in {lo} images)"
    assert entries[0][1] == provenance.GENERIC
    assert labels[1] == "dim: uncertain"
    ids, counts = np.unique(traj.source_index[0][images == 1], return_counts=True)
    assert labels[2] == f"#{100 + int(ids[np.argmax(counts)])}"


def test_mosaic_without_counts_fades_by_the_plain_entropy():
    traj, _, _, _ = one_step("els", 3, "zeros")
    traj.shared_count = traj.shared_images = None
    f = provenance.Frame(traj, 0, "els")
    conf = 1 - traj.entropy[0] / provenance.entropy_limit(traj, "els")
    want = provenance.fade(categorical_colors(traj.source_index[0]), conf)
    np.testing.assert_array_equal(provenance.mode("mosaic").colour(f), want)


@pytest.mark.parametrize(("machine", "p", "boundary"), [("bbels", 3, "zeros"), ("els", 5, "zeros")])
def test_candidates_colour_exp_entropy_on_a_log_scale(machine, p, boundary):
    traj, _, _, entropy = one_step(machine, p, boundary)
    f = provenance.Frame(traj, 0, machine)
    mode = provenance.mode("candidates")
    rgb = mode.colour(f)
    legend = mode.legend(f)
    _, _, h, w = traj.x0.shape
    n = len(traj.train_indices)
    most = n * (h - p + 1) * (w - p + 1)  # an interior pixel's candidates
    assert legend.vmin == 1.0 and legend.vmax == pytest.approx(most)
    lut = colormap_lut("viridis")
    for r in range(h):
        for c in range(w):
            # e^H on a log axis from 1 to `most`: position log(e^H) / log(most).
            pos = math.log(math.exp(entropy[r, c])) / math.log(most)
            code = int(np.clip(round(pos * 255), 0, 255))
            near = lut[max(0, code - 1) : code + 2].astype(int)
            assert (np.abs(near - rgb[r, c].astype(int)).max(axis=1) <= 1).any(), (r, c)


def test_mosaic_is_the_default_view():
    from ccdm_gui.core.view import DEFAULT_VIEW

    assert DEFAULT_VIEW.prov_mode == "mosaic"
    assert provenance.KEYS[0] == "mosaic"
