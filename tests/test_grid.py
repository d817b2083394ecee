"""Seed grids (core.grid, export.seedgrid, ``ccdm grid``) on a tiny conditional model.

A grid cell must be exactly the run ``ccdm run --seed S --label K`` computes, and the
files must show those samples, CNN above machine."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from PIL import Image
from test_pipeline import make_dataset, make_model

from ccdm_gui.cli import main
from ccdm_gui.core import render
from ccdm_gui.core.grid import parse_seeds, seed_grid
from ccdm_gui.core.pipeline import run_comparison
from ccdm_gui.core.spec import RunSpec
from ccdm_gui.export import WriteError, read_metadata
from ccdm_gui.export.compose import enlarge
from ccdm_gui.export.seedgrid import GridComposer, check_outputs, export_seed_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FASHION_ID = {"id": "fashion-mnist-train-60k"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("grid")
    model = make_model(d / "cond.safetensors", num_classes=10, dataset=FASHION_ID)
    return model, make_dataset(d / "data", n=60, classes=10)


@pytest.fixture(scope="module")
def small_grid(files):
    model, data = files
    return seed_grid(str(model), str(data), [1, 7], [0, 3, 4], steps=3, subset=4, patch_size=3)


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 0-2,1") == [5, 0, 1, 2]
    for bad in ("", "a-3", "4-2", "0-100000"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_each_cell_is_the_single_run_of_its_seed_and_class(files, small_grid):
    model, data = files
    g = small_grid
    assert g.names == ["Trouser", "Sneaker"] and g.seeds == [0, 3, 4]
    assert g.machine == "bbels" and g.cnn_x0.shape == (2, 3, 3, 1, 12, 12)
    for r, lab in enumerate(g.labels):
        for c, seed in enumerate(g.seeds):
            spec = RunSpec(
                model=str(model),
                dataset=str(data),
                subset=4,
                seed=seed,
                label=lab,
                steps=3,
                patch_size=3,
            )
            comp = run_comparison(spec)
            # batched vs one at a time: float rounding, relative to the largest value (an
            # untrained net's x0_hat reaches 100s)
            close(g.cnn_x0[r, c], comp.cnn.x0)
            close(g.machine_x0[r, c], comp.machine.x0)
            close(g.machine_final[r, c], comp.machine.final)
            assert g.correlation[r, c] == pytest.approx(comp.final_correlation, abs=1e-4)
            # the machine copied only from the first 4 images of the class
            assert set(comp.machine.train_indices % 10) == {lab}


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * float(np.abs(b).max()) + 1e-6)


def _cell(frame, comp: GridComposer, r: int, c: int, machine: bool) -> np.ndarray:
    y = comp._y(r) + (comp.cell_h + comp.gap if machine else 0)
    x = comp._x(c)
    return frame[y : y + comp.cell_h, x : x + comp.cell_w]


def test_png_shows_the_final_samples_cnn_above_machine(small_grid, tmp_path):
    g = small_grid
    png, video = tmp_path / "g.png", tmp_path / "g.gif"
    written = export_seed_grid(g, png, video, scale=2, fps=5, hold_last=0.4)
    assert written == [video, png]
    img = np.asarray(Image.open(png).convert("RGB"))
    comp = GridComposer(g, 2)
    assert img.shape == (comp.height, comp.width, 3)
    for r in range(2):
        for c in range(3):
            for machine, src in ((False, g.cnn_final), (True, g.machine_final)):
                want = enlarge(render.image_rgb(src[r, c]), 2)
                np.testing.assert_array_equal(_cell(img, comp, r, c, machine), want)
    record = json.loads(Image.open(png).text["Comment"])
    assert record["kind"] == "seed-grid" and record["classes"] == ["Trouser", "Sneaker"]
    assert record["seeds"] == [0, 3, 4] and record["labels"] == [1, 7]
    assert record["correlation"][1][2] == pytest.approx(float(g.correlation[1, 2]))
    # the video: one frame per step, each step's x0_hat, then the hold
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) >= g.steps
    for step in range(g.steps):
        want = enlarge(render.image_rgb(g.machine_x0[1, 2, step]), 2)
        np.testing.assert_array_equal(_cell(frames[step], comp, 1, 2, True), want)
    assert read_metadata(video)["seeds"] == [0, 3, 4]


def test_outputs_are_checked_before_anything_is_computed(tmp_path):
    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(WriteError, match="already exists"):
        check_outputs(existing, None)
    with pytest.raises(WriteError, match="unknown video file type '.avi'"):
        check_outputs(None, tmp_path / "g.avi")
    with pytest.raises(WriteError, match="must be a .png"):
        check_outputs(tmp_path / "g.jpg", None)
    with pytest.raises(WriteError, match="does not exist"):
        check_outputs(tmp_path / "no" / "g.png", None)
    with pytest.raises(WriteError, match="PNG file, a video file or both"):
        check_outputs(None, None)
    # the command reports a bad output (a bad argument: status 2) before it even reads
    # the (missing) model
    rc = main(["grid", "--model", str(tmp_path / "missing.safetensors"), "--out", str(existing)])
    assert rc == 2 and existing.read_bytes() == b"keep me"


def test_ccdm_grid_one_class_by_name(files, tmp_path, capsys):
    model, data = files
    png, video = tmp_path / "t.png", tmp_path / "t.mp4"
    argv = ["grid", "--model", str(model), "--dataset", str(data), "--class", "trousers"]
    argv += ["--seeds", "0-1", "--subset", "4", "--steps", "2", "--patch-size", "3"]
    assert main([*argv, "--out", str(png), "--video", str(video), "--scale", "2"]) == 0
    out = capsys.readouterr().out
    assert "Trouser" in out and f"wrote {png}" in out and f"wrote {video}" in out
    g = seed_grid(str(model), str(data), [1], [0, 1], steps=2, subset=4, patch_size=3)
    want = GridComposer(g, 2).frame(None)
    np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), want)
    assert read_metadata(video)["labels"] == [1]
    # a second run refuses to replace the files unless told to
    assert main([*argv, "--out", str(png)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--out", str(png), "--overwrite"]) == 0


def test_ccdm_grid_all_classes_and_a_bad_class(files, tmp_path, capsys):
    model, data = files
    png = tmp_path / "all.png"
    argv = ["grid", "--model", str(model), "--dataset", str(data), "--seeds", "2"]
    argv += ["--subset", "3", "--steps", "2", "--patch-size", "3", "--machine", "ls"]
    assert main([*argv, "--out", str(png), "--scale", "1"]) == 0
    record = json.loads(Image.open(png).text["Comment"])
    assert record["labels"] == list(range(10)) and record["classes"][9] == "Ankle boot"
    assert main([*argv, "--class", "hat", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "'hat' is not a class" in err and "1 Trouser" in err
    assert not (tmp_path / "x.png").exists()


def test_an_unconditional_model_makes_one_row(tmp_path):
    model = make_model(tmp_path / "u.safetensors")
    data = make_dataset(tmp_path / "data")
    g = seed_grid(str(model), str(data), [None], [0, 1], steps=2, subset=5, machine="ideal")
    assert g.names == ["all classes"] and g.cnn_x0.shape[:2] == (1, 2)
    png = tmp_path / "u.png"
    export_seed_grid(g, png)
    assert Image.open(png).size == (GridComposer(g).width, GridComposer(g).height)
