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


def expected_mosaic(x0, src, share, images):
    """The mosaic colour of one pixel written out: white mixed towards the source's hue
    (at full brightness) by sqrt(share), none for a generic patch, times the sample's
    brightness."""
    light = provenance.FLOOR + (1 - provenance.FLOOR) * min(1.0, max(0.0, (x0 + 1) / 2))
    hue = categorical_colors(np.array([src]))[0].astype(float)
    hue = hue * 255.0 / max(hue.max(), 1.0)
    s = 0.0 if images > 1 else math.sqrt(min(1.0, share))
    return (255.0 * (1 - s) + hue * s) * light


# Seeds whose first image has both generic and single-source pixels.
@pytest.mark.parametrize(
    ("machine", "p", "boundary", "seed"),
    [
        ("bbels", 3, "zeros", 4),
        ("els", 3, "circular", 3),
        ("ls", 3, "zeros", 0),
        ("els", 5, "zeros", 1),
    ],
)
def test_mosaic_is_the_sample_tinted_by_its_source(machine, p, boundary, seed):
    traj, share, images, _ = one_step(machine, p, boundary, seed)
    x, train = repetitive_case(seed)
    ref = reference_denoise(x[:1], AB, train, machine, p, boundary)
    f = provenance.Frame(traj, 0, machine)
    rgb = provenance.mode("mosaic").colour(f)
    h, w = share.shape
    for r in range(h):
        for c in range(w):
            x0 = float(np.asarray(ref["x0"])[0, :, r, c].mean())
            want = expected_mosaic(x0, traj.source_index[0, r, c], share[r, c], images[r, c])
            assert np.abs(rgb[r, c].astype(float) - want).max() <= 1.0, (r, c)
    # Both kinds are on screen: generic patches and single sources.
    assert (images > 1).any() and (images == 1).any()


@pytest.mark.parametrize(
    ("machine", "p", "boundary", "seed"), [("bbels", 3, "zeros", 4), ("els", 3, "circular", 3)]
)
def test_mosaic_key_explains_the_tint_and_names_the_most_coloured_sources(
    machine, p, boundary, seed
):
    traj, share, images, _ = one_step(machine, p, boundary, seed)
    f = provenance.Frame(traj, 0, machine)
    entries = provenance.mode("mosaic").legend(f).colors
    labels = [label for label, _ in entries]
    assert labels[0].startswith("pale: ")
    shared = images[images > 1]
    lo, hi = int(shared.min()), int(shared.max())
    span = f"{lo}" if lo == hi else f"{lo}-{hi}"
    assert labels[1] == f"no tint: generic, in {span} images"
    # Sources ranked by the pixels they colour at least half-strongly (share >= 1/4).
    strong = (images == 1) & (share >= 0.25)
    ids, counts = np.unique(traj.source_index[0][strong], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    want = [f"#{100 + int(ids[k])}: {int(counts[k])} px" for k in order[: len(labels) - 2]]
    assert labels[2:] == want
    assert len(labels) == min(provenance.KEY_ITEMS, 2 + len(ids))


def test_mosaic_key_adds_the_class_where_the_set_has_labels():
    traj, share, images, _ = one_step("els", 3, "circular", 3)
    traj.train_labels = np.arange(len(traj.train_indices)) % 10
    entries = provenance.mode("mosaic").legend(provenance.Frame(traj, 0, "els")).colors
    first = entries[2][0]
    i = int(first.split()[0][1:]) - 100
    assert first.startswith(f"#{100 + i} (class {i % 10}): ")
    # A known dataset's names stand for the numbers; bare-number names do not.
    names = tuple(f"kind{k}" for k in range(10))
    named = provenance.mode("mosaic").legend(provenance.Frame(traj, 0, "els", class_names=names))
    assert named.colors[2][0].startswith(f"#{100 + i} (kind{i % 10}): ")
    digits = tuple(str(k) for k in range(10))
    plain = provenance.mode("mosaic").legend(provenance.Frame(traj, 0, "els", class_names=digits))
    assert plain.colors[2][0] == first


def test_mosaic_without_counts_tints_by_the_winner_alone():
    traj, _, _, _ = one_step("els", 3, "zeros")
    traj.shared_count = traj.shared_images = None
    f = provenance.Frame(traj, 0, "els")
    rgb = provenance.mode("mosaic").colour(f)
    for r, c in [(0, 0), (3, 4), (6, 5)]:
        want = expected_mosaic(
            float(traj.x0[0, :, r, c].mean()), traj.source_index[0, r, c], traj.weight[0, r, c], 1
        )
        assert np.abs(rgb[r, c].astype(float) - want).max() <= 1.0, (r, c)


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
