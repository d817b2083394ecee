"""core.render and core.palette: the pixels the app shows and export writes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest

from ccdm_gui.core import palette, provenance, render
from ccdm_gui.core.spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec
from ccdm_gui.core.view import View


def make_comparison(T=5, C=1, H=32, W=32, seed=0, n_train=50, machine="bbels") -> Comparison:
    rng = np.random.default_rng(seed)
    t = np.arange(T, 0, -1) / T

    def imgs():
        return rng.uniform(-1.2, 1.2, (T, C, H, W)).astype(np.float32)

    cnn = CNNTrajectory(t=t, x_t=imgs(), x0=imgs(), final=imgs()[-1])
    mach = MachineTrajectory(
        t=t,
        patch_size=np.linspace(15, 3, T).astype(int) | 1,
        x_t=imgs(),
        x0=imgs(),
        source_index=rng.integers(0, n_train, (T, H, W)),
        source_yx=rng.integers(0, H, (T, H, W, 2)),
        weight=rng.uniform(0, 1, (T, H, W)).astype(np.float32),
        entropy=rng.uniform(0, 5, (T, H, W)).astype(np.float32),
        final=imgs()[-1],
        train_indices=np.arange(n_train) * 7 + 3,
        train_labels=rng.integers(0, 10, n_train),
    )
    spec = RunSpec(
        model="models/m.safetensors",
        dataset="mnist",
        subset=n_train,
        seed=seed,
        steps=T,
        machine=machine,
    )
    return Comparison(spec=spec, cnn=cnn, machine=mach, correlation=rng.uniform(0, 1, T))


@pytest.fixture(scope="module")
def comp() -> Comparison:
    return make_comparison()


def test_image_rgb_grey_levels_and_clipping():
    img = np.array([[[-2.0, -1.0, 0.0, 1.0, 3.0]]], np.float32)
    out = render.image_rgb(img)
    assert out.shape == (1, 5, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert out[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    # Custom levels stretch the same values differently.
    assert render.image_rgb(img, levels=(0.0, 1.0))[0, :, 0].tolist() == [0, 0, 0, 255, 255]


def test_image_rgb_colour_keeps_channels():
    img = np.zeros((3, 2, 2), np.float32)
    img[0] = 1.0  # red
    img[2] = -1.0
    out = render.image_rgb(img)
    assert out[0, 0].tolist() == [255, 128, 0]
    with pytest.raises(ValueError):
        render.image_rgb(np.zeros((2, 4, 4)))


def _median_seconds(fn, n=200) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def test_render_a_32x32_frame_well_under_a_millisecond(comp):
    assert _median_seconds(lambda: render.image_rgb(comp.cnn.x0[2])) < 1e-3
    for mode in provenance.KEYS:
        assert _median_seconds(lambda m=mode: render.provenance_rgb(comp.machine, 2, m)) < 1e-3
    assert _median_seconds(lambda: render.difference_rgb(comp.cnn.x0[1], comp.machine.x0[1])) < 1e-3


def test_colormaps_are_uint8_tables_with_the_expected_shape():
    for name in palette.COLORMAPS:
        lut = palette.colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
    with pytest.raises(ValueError):
        palette.colormap_lut("jet")
    # Sequential maps get brighter monotonically (luminance), so "more" always reads
    # as "brighter".
    for name in ("viridis", "inferno", "grey"):
        lum = palette.colormap_lut(name).astype(float) @ [0.2126, 0.7152, 0.0722]
        assert (np.diff(lum) >= -0.5).all(), name
    div = palette.colormap_lut("diverging").astype(int)
    assert div[0, 2] > div[0, 0] + 50  # blue end
    assert div[255, 0] > div[255, 2] + 50  # red end
    assert (div[127:129] > 230).all()  # white middle


def test_apply_lut_clips_and_maps_nan_to_the_bottom():
    lut = palette.colormap_lut("viridis")
    out = palette.apply_lut(np.array([-5.0, 0.0, 0.5, 1.0, 9.0, np.nan]), 0.0, 1.0, lut)
    assert out.shape == (6, 3)
    assert (out[0] == lut[0]).all() and (out[1] == lut[0]).all()
    assert (out[2] == lut[128]).all()
    assert (out[3] == lut[255]).all() and (out[4] == lut[255]).all()
    assert (out[5] == lut[0]).all()
    with pytest.raises(ValueError):
        palette.apply_lut(np.zeros(3), 1.0, 1.0, lut)


def test_categorical_colours_keep_neighbouring_ids_apart():
    ids = np.arange(2000)
    c = palette.categorical_colors(ids).astype(int)
    assert c.shape == (2000, 3) and palette.categorical_colors(ids).dtype == np.uint8
    # Stable: the same id always gets the same colour, whatever else is in the frame.
    assert (palette.categorical_colors(np.array([[7, 900]]))[0] == c[[7, 900]]).all()
    step = np.abs(c[1:] - c[:-1]).sum(axis=1)
    assert step.min() > 60
    # And ids a few apart too (neighbours on screen often come from nearby ids).
    for k in (2, 3, 5):
        assert np.abs(c[k:] - c[:-k]).sum(axis=1).min() > 30, k
    assert len({tuple(x) for x in c[:64]}) == 64
    assert palette.categorical_colors(np.array([-1]))[0].tolist() == [89, 89, 89]


def test_provenance_modes(comp):
    step = 1
    m = comp.machine
    src = render.provenance_rgb(m, step, "source")
    assert src.shape == (32, 32, 3) and src.dtype == np.uint8
    ids = m.source_index[step]
    major = m.weight[step] > 0.5
    grey = palette.categorical_colors(np.array([-1]))[0]
    assert major.any() and (~major).any()
    # Pixels whose winner holds most of the weight take their source's colour ...
    k = tuple(np.argwhere(major)[0])
    same = (ids == ids[k]) & major
    assert (src[same] == src[k]).all()
    assert (src[major & ~same] != src[k]).any(axis=-1).all()
    assert (src[major] != grey).any(axis=-1).all()
    # ... the rest are grey, whatever their argmax.
    assert (src[~major] == grey).all()

    pos = render.provenance_rgb(m, step, "position")
    rows, cols = m.source_yx[step][..., 0], m.source_yx[step][..., 1]
    # Red follows the row, blue the column.
    assert np.corrcoef(pos[..., 0][major], rows[major])[0, 1] > 0.99
    assert np.corrcoef(pos[..., 2][major], cols[major])[0, 1] > 0.99
    assert (pos[~major] == grey).all()

    w = render.provenance_rgb(m, step, "weight")
    lut = palette.colormap_lut("viridis")
    k = np.unravel_index(np.argmax(m.weight[step]), (32, 32))
    assert np.abs(w[k].astype(int) - lut[int(m.weight[step][k] * 255 + 0.5)]).max() == 0

    e = render.provenance_rgb(m, step, "entropy", entropy_max=5.0)
    inferno = palette.colormap_lut("inferno")
    k = np.unravel_index(np.argmin(m.entropy[step]), (32, 32))
    assert (e[k] == inferno[int(m.entropy[step][k] / 5.0 * 255 + 0.5)]).all()
    with pytest.raises(ValueError):
        render.provenance_rgb(m, step, "nope")


def test_source_label_colours_the_class_of_the_majority_source(comp):
    m = comp.machine
    step = 2
    got = render.provenance_rgb(m, step, "label")
    # Reference, pixel by pixel: the class of the winning image where it holds the
    # majority, grey elsewhere.
    grey = palette.categorical_colors(np.array([-1]))[0]
    for r in range(32):
        for c in range(32):
            if m.weight[step, r, c] > 0.5:
                want = palette.categorical_colors(
                    np.array([m.train_labels[m.source_index[step, r, c]]])
                )[0]
            else:
                want = grey
            assert (got[r, c] == want).all(), (r, c)
    key = render.legend("label", m, step)
    assert key.kind == "categories" and key.colors[0][0] == provenance.NO_MAJORITY_LABEL
    major = m.weight[step] > 0.5
    classes, counts = np.unique(m.train_labels[m.source_index[step][major]], return_counts=True)
    assert key.colors[1][0] == f"class {classes[np.argmax(counts)]}"
    named = render.legend("label", m, step, class_names=tuple(f"n{k}" for k in range(10)))
    assert named.colors[1][0] == f"n{classes[np.argmax(counts)]}"
    assert len(key.colors) == min(provenance.KEY_ITEMS, len(classes) + 1)
    assert "label" in render.caption(comp, step, "provenance", View(prov_mode="label"))
    # A dataset without labels: the mode is not offered, and paints nothing but grey.
    unlabelled = dataclasses.replace(m, train_labels=None)
    mode = provenance.mode("label")
    assert mode.available(m) and not mode.available(unlabelled)
    assert all(provenance.mode(k).available(unlabelled) for k in provenance.KEYS if k != "label")
    assert (render.provenance_rgb(unlabelled, step, "label") == grey).all()


def test_entropy_scale_is_log_of_the_largest_candidate_count(comp):
    # bbELS interior pixels at the smallest P (3) have N * 30 * 30 candidates.
    assert provenance.entropy_limit(comp.machine, "bbels") == pytest.approx(np.log(50 * 30 * 30))
    assert provenance.entropy_limit(comp.machine, "ls") == pytest.approx(np.log(50))
    assert provenance.candidate_count("els", 10, 33, 32, 32) == 10  # P >= image: falls back to LS


def test_difference_is_blue_white_red():
    a = np.zeros((1, 1, 3), np.float32)
    b = np.array([[[0.0, 1.0, -1.0]]], np.float32)
    d = render.difference_rgb(a, b).astype(int)
    assert (d[0, 0] > 230).all()  # equal: white
    assert d[0, 1, 2] > d[0, 1, 0]  # a darker: blue
    assert d[0, 2, 0] > d[0, 2, 2]  # a brighter: red


def test_panel_images_follow_show_and_diff(comp):
    p = render.panel_images(comp, 3, View(show="x0", prov_mode="source", diff=False))
    assert list(p) == View().panels == ["cnn", "machine", "provenance"]
    assert all(v.shape == (32, 32, 3) and v.dtype == np.uint8 for v in p.values())
    assert (p["cnn"] == render.image_rgb(comp.cnn.x0[3])).all()
    q = render.panel_images(comp, 3, View(show="xt", prov_mode="weight", diff=True))
    assert list(q) == View(diff=True).panels == ["cnn", "machine", "provenance", "difference"]
    assert (q["machine"] == render.image_rgb(comp.machine.x_t[3])).all()
    assert (q["difference"] == render.difference_rgb(comp.cnn.x_t[3], comp.machine.x_t[3])).all()
    with pytest.raises(ValueError):
        View(show="eps")
    with pytest.raises(ValueError, match="unknown provenance mode"):
        View(prov_mode="nope")


def test_captions_carry_t_p_and_correlation(comp):
    step = 2
    t, p, r = comp.cnn.t[step], comp.machine.patch_size[step], comp.correlation[step]
    cnn = render.caption(comp, step, "cnn")
    mach = render.caption(comp, step, "machine")
    assert cnn.startswith("CNN") and f"t={t:.2f}" in cnn
    assert mach.startswith("bbELS") and f"P={p}" in mach and f"r={r:.2f}" in mach
    assert "x_t" in render.caption(comp, step, "cnn", View(show="xt"))
    assert "weight" in render.caption(comp, step, "provenance", View(prov_mode="weight"))
    assert render.caption(comp, step, "difference").startswith("CNN - bbELS")
    # Plain text the export font can draw: ASCII and the middle dot only.
    for panel in render.PANELS:
        assert all(ord(ch) < 128 or ch == "\u00b7" for ch in render.caption(comp, 0, panel))


def test_legends(comp):
    bar = render.legend("weight")
    assert (
        bar.kind == "bar" and bar.vmin == 0.0 and bar.vmax == 1.0 and bar.colors.shape == (256, 3)
    )
    ent = render.legend("entropy", comp.machine, machine="bbels")
    assert ent.vmax == pytest.approx(provenance.entropy_limit(comp.machine, "bbels"))
    cats = render.legend("source", comp.machine, 0)
    assert cats.kind == "categories" and len(cats.colors) == provenance.KEY_ITEMS
    # First the grey of pixels without a majority source, then the largest source,
    # counted over majority pixels only and labelled with its index in the full dataset.
    grey = tuple(int(v) for v in palette.categorical_colors(np.array([-1]))[0])
    assert cats.colors[0] == (provenance.NO_MAJORITY_LABEL, grey)
    major = comp.machine.weight[0] > 0.5
    ids, counts = np.unique(comp.machine.source_index[0][major], return_counts=True)
    top = ids[np.argmax(counts)]
    assert cats.colors[1][0] == f"#{comp.machine.train_indices[top]}"
    assert cats.colors[1][1] == tuple(int(v) for v in palette.categorical_colors(top))
    # With every winner a majority, no grey entry.
    sure = dataclasses.replace(comp.machine, weight=np.ones_like(comp.machine.weight))
    cats = render.legend("source", sure, 0)
    ids, counts = np.unique(comp.machine.source_index[0], return_counts=True)
    assert cats.colors[0][0] == f"#{comp.machine.train_indices[ids[np.argmax(counts)]]}"
    plane = render.legend("position", comp.machine)
    assert plane.kind == "plane" and plane.colors.shape == (32, 32, 3)
    colors, vmin, vmax, label = render.legend("difference")
    assert (vmin, vmax) == (-1.0, 1.0) and "CNN" in label


def test_core_render_and_export_import_no_qt():
    code = (
        "import sys, ccdm_gui.core.render, ccdm_gui.export;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
