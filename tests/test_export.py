"""export: what is written decodes back to what core.render drew, and failures and
cancellations leave nothing behind."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import ccdm_gui
from ccdm_gui.core import atomic, render
from ccdm_gui.core.spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec
from ccdm_gui.core.view import View
from ccdm_gui.export import (
    SIDECAR,
    WriteCancelled,
    WriteError,
    export_frames,
    export_grid_video,
    export_video,
    read_metadata,
    render_frames,
    video,
)
from ccdm_gui.export.compose import Composer, enlarge

T = 5


def make_comparison(seed=0, levels: int | None = None, n_train=12) -> Comparison:
    """T=5 steps of 1x32x32. With ``levels`` the images take that many grey values and
    provenance uses few sources, so a composite frame fits a 256-colour GIF palette."""
    rng = np.random.default_rng(seed)
    t = np.arange(T, 0, -1) / T

    def imgs():
        x = rng.uniform(-1.0, 1.0, (T, 1, 32, 32)).astype(np.float32)
        if levels:
            x = np.round((x + 1) / 2 * (levels - 1)) / (levels - 1) * 2 - 1
        return x.astype(np.float32)

    cnn = CNNTrajectory(t=t, x_t=imgs(), x0=imgs(), final=imgs()[-1])
    mach = MachineTrajectory(
        t=t,
        patch_size=np.array([15, 11, 7, 5, 3]),
        x_t=imgs(),
        x0=imgs(),
        source_index=rng.integers(0, n_train, (T, 32, 32)),
        source_yx=rng.integers(0, 32, (T, 32, 32, 2)),
        weight=rng.uniform(0, 1, (T, 32, 32)).astype(np.float32),
        entropy=rng.uniform(0, 5, (T, 32, 32)).astype(np.float32),
        final=imgs()[-1],
        train_indices=np.arange(n_train) * 5,
    )
    spec = RunSpec(
        model="models/mnist_resnet_zeros.safetensors",
        dataset="mnist",
        subset=n_train,
        seed=seed,
        steps=T,
    )
    return Comparison(spec=spec, cnn=cnn, machine=mach, correlation=rng.uniform(0, 1, T))


@pytest.fixture(scope="module")
def comp():
    return make_comparison()


@pytest.fixture(scope="module")
def few_colours():
    return make_comparison(seed=3, levels=9)


def decode(path) -> tuple[list[np.ndarray], dict, dict]:
    """Frames, stream facts and container metadata. The facts are read while the file
    is open: a PyAV stream must not be touched after its container is closed."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        info = {
            "rate": s.average_rate,
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
        }
        return frames, info, {k.lower(): v for k, v in c.metadata.items()}


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- frames


def test_render_frames_layouts(comp):
    composite = render_frames(comp, View(prov_mode="weight", diff=True), scale=4)
    assert len(composite) == T
    h, w, _ = composite[0].shape
    assert h % 2 == 0 and w % 2 == 0
    assert all(f.shape == (h, w, 3) and f.dtype == np.uint8 for f in composite)
    # The composite holds exactly the renderer's pixels, enlarged by nearest neighbour.
    c = Composer(comp, View(prov_mode="weight", diff=True), 4)
    g = c.geometry
    panels = render.panel_images(comp, 2, View(prov_mode="weight", diff=True))
    for k, name in enumerate(c.panels):
        region = composite[2][g.panel_y : g.panel_y + 128, g.panel_x(k) : g.panel_x(k) + 128]
        assert (region == enlarge(panels[name], 4)).all(), name

    per_panel = render_frames(comp, layout="panels", scale=3)
    assert set(per_panel[0]) == {"cnn", "machine", "provenance"}
    assert per_panel[0]["cnn"].shape == (96, 96, 3)
    assert (per_panel[4]["machine"][::3, ::3] == render.image_rgb(comp.machine.x0[4])).all()
    strip = render_frames(comp, layout="strip", scale=1)
    assert strip[0].shape[0] == 32 and strip[0].shape[1] >= 3 * 32
    with pytest.raises(ValueError):
        render_frames(comp, layout="mosaic")


def test_export_frames_png_equal_rendered_exactly(comp, tmp_path):
    out = tmp_path / "new" / "frames"  # parents created as needed
    seen = []
    paths = export_frames(
        comp, out, View(prov_mode="position"), scale=2, on_progress=lambda i, n: seen.append((i, n))
    )
    assert [p.name for p in paths] == [f"frame_{i:03d}.png" for i in range(T)]
    assert listing(out) == sorted([p.name for p in paths] + [SIDECAR])
    assert seen == [(i, T) for i in range(1, T + 1)]
    ref = render_frames(comp, View(prov_mode="position"), scale=2)
    for p, r in zip(paths, ref, strict=True):
        assert (np.asarray(Image.open(p).convert("RGB")) == r).all()
    meta = json.loads((out / SIDECAR).read_text())
    assert meta["version"] == ccdm_gui.__version__
    run = meta["runs"][0]
    assert run["spec"]["seed"] == 0 and run["spec"]["machine"] == "bbels"
    assert [s["t"] for s in run["steps"]] == pytest.approx(comp.cnn.t.tolist())
    assert [s["patch_size"] for s in run["steps"]] == comp.machine.patch_size.tolist()
    assert [s["correlation"] for s in run["steps"]] == pytest.approx(comp.correlation.tolist())
    assert meta["view"]["provenance"] == "position"
    # PNG text chunks carry the version too.
    assert Image.open(paths[0]).text["Software"] == f"ccdm-gui {ccdm_gui.__version__}"


def test_export_frames_panels_layout(comp, tmp_path):
    view = View(prov_mode="source", diff=True)
    paths = export_frames(comp, tmp_path / "p", view, layout="panels", scale=1)
    assert len(paths) == 4 * T
    assert (tmp_path / "p" / "difference_004.png").exists()
    img = np.asarray(Image.open(tmp_path / "p" / "provenance_002.png").convert("RGB"))
    assert (img == render.provenance_rgb(comp.machine, 2, "source")).all()


def test_frames_refuse_to_clobber_and_overwrite_replaces_stale(comp, tmp_path):
    out = tmp_path / "f"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    export_frames(comp, out, scale=1)
    before = (out / "frame_000.png").read_bytes()
    with pytest.raises(WriteError, match="already holds"):
        export_frames(make_comparison(seed=1), out, scale=1)
    assert (out / "frame_000.png").read_bytes() == before
    # A shorter run with overwrite replaces the frames and drops the ones it no longer
    # has, but leaves the user's own files alone.
    short = make_comparison(seed=1)
    short.cnn.t = short.cnn.t[:3]
    export_frames(short, out, scale=1, overwrite=True)
    assert listing(out) == [
        "ccdm_export.json",
        "frame_000.png",
        "frame_001.png",
        "frame_002.png",
        "notes.txt",
    ]
    assert (out / "frame_000.png").read_bytes() != before


def test_frames_cancel_leaves_nothing(comp, tmp_path):
    calls = []

    def cancel_after_two():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(WriteCancelled):
        export_frames(comp, tmp_path / "a" / "b", scale=1, should_cancel=cancel_after_two)
    assert listing(tmp_path) == []  # not even the parents it created
    existing = tmp_path / "keep"
    existing.mkdir()
    (existing / "x.txt").write_text("x")
    calls.clear()
    with pytest.raises(WriteCancelled):
        export_frames(comp, existing, scale=1, should_cancel=cancel_after_two)
    assert listing(existing) == ["x.txt"]


# ----------------------------------------------------------------------------- video


def test_mp4_frames_size_fps_and_metadata(comp, tmp_path):
    path = tmp_path / "run.mp4"
    seen = []
    out = export_video(comp, path, fps=5, hold_last=1.0, on_progress=lambda i, n: seen.append(i))
    assert out == path and listing(tmp_path) == ["run.mp4"]
    assert seen == list(range(1, T + 1))
    frames, stream, meta = decode(path)
    ref = render_frames(comp)
    assert len(frames) == T + 5  # one second held at 5 fps
    assert frames[0].shape == ref[0].shape
    assert stream["rate"] == 5
    assert stream["codec"] == "h264" and stream["pix_fmt"] == "yuv420p"
    # Lossy, but close: these random 32x32 images are the worst case for H.264.
    assert np.abs(frames[0].astype(int) - ref[0]).mean() < 2.5
    assert np.abs(frames[T - 1].astype(int) - ref[-1]).mean() < 2.5
    assert np.abs(frames[-1].astype(int) - ref[-1]).mean() < 2.5
    assert "seed 0" in meta["title"]
    record = read_metadata(path)
    assert record["version"] == ccdm_gui.__version__
    assert record["runs"][0]["spec"]["model"] == comp.spec.model
    assert [s["patch_size"] for s in record["runs"][0]["steps"]] == [15, 11, 7, 5, 3]


def test_mp4_pads_odd_sizes_to_even(comp, tmp_path):
    path = export_video(comp, tmp_path / "s.mp4", layout="strip", scale=1)
    frames, stream, _ = decode(path)
    strip = render_frames(comp, layout="strip", scale=1)[0]
    assert frames[0].shape == strip.shape and strip.shape[0] % 2 == 0 and strip.shape[1] % 2 == 0
    assert video._even(np.zeros((3, 5, 3), np.uint8)).shape == (4, 6, 3)


def test_gif_frames_equal_rendered_exactly(few_colours, tmp_path):
    # Categorical provenance: a GIF palette holds every colour (the mosaic's fades do not fit).
    view = View(prov_mode="source")
    path = export_video(few_colours, tmp_path / "run.gif", view, fps=4, hold_last=2.0, scale=4)
    ref = render_frames(few_colours, view, scale=4)
    frames, _, meta = decode(path)
    assert len(frames) == T
    for f, r in zip(frames, ref, strict=True):
        assert (f == r).all()
    with Image.open(path) as im:
        assert im.n_frames == T
        durations = []
        for i in range(T):
            im.seek(i)
            durations.append(im.info["duration"])
            assert (np.asarray(im.convert("RGB")) == ref[i]).all()
        assert durations[0] == 250 and durations[-1] == 2250  # hold extends the last frame
    assert json.loads(meta["comment"])["version"] == ccdm_gui.__version__


def test_gif_with_too_many_colours_is_still_close(comp, tmp_path):
    path = export_video(comp, tmp_path / "many.gif", View(prov_mode="weight"), scale=2)
    frames, _, _ = decode(path)
    ref = render_frames(comp, View(prov_mode="weight"), scale=2)
    assert np.abs(frames[0].astype(int) - ref[0]).mean() < 3


@pytest.mark.skipif("webm" not in video.available_formats(), reason="no VP9 encoder")
def test_webm(few_colours, tmp_path):
    path = export_video(few_colours, tmp_path / "run.webm", scale=2, fps=2)
    frames, stream, meta = decode(path)
    ref = render_frames(few_colours, scale=2)
    assert len(frames) == T and stream["codec"] == "vp9"
    assert np.abs(frames[-1].astype(int) - ref[-1]).mean() < 3
    assert json.loads(meta["comment"])["runs"][0]["spec"]["seed"] == 3


def test_grid_video_tiles_the_seeds(tmp_path):
    comps = [make_comparison(seed=s) for s in range(3)]
    path = export_grid_video(comps, tmp_path / "grid.mp4", scale=1, hold_last=0)
    frames, _, _ = decode(path)
    single = render_frames(comps[0], scale=1)[0]
    h, w, _ = single.shape
    assert len(frames) == T
    assert frames[0].shape[0] >= 2 * h and frames[0].shape[1] >= 2 * w  # 2 x 2 cells
    record = read_metadata(path)
    assert [r["spec"]["seed"] for r in record["runs"]] == [0, 1, 2]


# ----------------------------------------------------------------------------- failures


def test_video_refuses_to_clobber(comp, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"precious")
    with pytest.raises(WriteError, match="already exists") as e:
        export_video(comp, path, scale=1)
    assert str(path) in str(e.value)
    assert path.read_bytes() == b"precious" and listing(tmp_path) == ["v.mp4"]
    export_video(comp, path, scale=1, overwrite=True)
    assert decode(path)[0][0].shape[0] > 0


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_cancel_midway_leaves_nothing_and_keeps_the_old_file(comp, tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    path.write_bytes(b"old")
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(WriteCancelled):
        export_video(comp, path, scale=1, overwrite=True, should_cancel=cancel)
    assert len(calls) == 3
    assert listing(tmp_path) == [path.name] and path.read_bytes() == b"old"
    with pytest.raises(WriteCancelled):
        export_video(comp, tmp_path / f"new{suffix}", scale=1, should_cancel=lambda: True)
    assert listing(tmp_path) == [path.name]


def test_unknown_format_and_missing_encoder(comp, tmp_path, monkeypatch):
    with pytest.raises(WriteError, match="unknown video") as e:
        export_video(comp, tmp_path / "v.avi")
    assert "v.avi" in str(e.value)
    with pytest.raises(WriteError, match="unknown video format 'mkv'"):
        export_video(comp, tmp_path / "v.mp4", fmt="mkv")
    # An FFmpeg build without the encoder: the lookup is real, the name does not exist.
    monkeypatch.setitem(
        video.FORMATS, "mp4", video.VideoFormat("mp4", "MP4", "no-such-encoder", 18, (0, 51))
    )
    with pytest.raises(WriteError, match="no no-such-encoder encoder") as e:
        export_video(comp, tmp_path / "v.mp4")
    assert "v.mp4" in str(e.value)
    assert listing(tmp_path) == []


def test_bad_settings_are_export_errors(comp, tmp_path):
    for kwargs in (
        {"fps": 0},
        {"hold_last": -1},
        {"quality": 99},
        {"scale": 0},
        # The test run's training set has no labels to colour by.
        {"view": View(prov_mode="label")},
    ):
        with pytest.raises(WriteError):
            export_video(comp, tmp_path / "v.mp4", **kwargs)
    assert listing(tmp_path) == []


def _unwritable_folder(tmp_path: Path) -> Path:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if not os.access(d, os.W_OK):
        return d
    # root ignores permission bits; sysfs refuses new files even to root.
    probe = Path("/sys/ccdm-probe.mp4")
    try:
        probe.open("x").close()
    except OSError:
        return Path("/sys")
    probe.unlink()
    pytest.skip("no unwritable folder available")


def test_unwritable_folder(comp, tmp_path):
    folder = _unwritable_folder(tmp_path)
    try:
        with pytest.raises(WriteError) as e:
            export_video(comp, folder / "v.mp4", scale=1)
        assert str(folder) in str(e.value)
        with pytest.raises(WriteError) as e:
            export_frames(comp, folder / "frames", scale=1)
        assert str(folder) in str(e.value)
        assert not (folder / "v.mp4").exists() and not (folder / "frames").exists()
    finally:
        (tmp_path / "ro").chmod(0o755)
    with pytest.raises(WriteError, match="does not exist|not a folder"):
        export_video(comp, tmp_path / "missing" / "v.mp4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="not a folder|is a file"):
        export_frames(comp, tmp_path / "file" / "frames")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_cannot_be_created_is_not_missing(comp):
    # /proc exists but takes no new folders: mkdir there fails with ENOENT, which once
    # read "folder /proc does not exist".
    with pytest.raises(WriteError) as e:
        export_frames(comp, "/proc/ccdm_frames", scale=1)
    assert "cannot create /proc/ccdm_frames" in str(e.value)
    assert "does not exist" not in str(e.value)


@pytest.fixture
def disk_fills_up(monkeypatch):
    """Every export byte goes through atomic.TempFile.write; let the first 20 kB land
    (so half a file really is on disk) and then fail like a full disk."""
    written = {"n": 0}
    real_write = atomic.TempFile.write

    def write(self, data):
        if written["n"] > 20_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written["n"] += len(data)
        return real_write(self, data)

    monkeypatch.setattr(atomic.TempFile, "write", write)
    return written


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm"])
def test_full_disk_video(comp, tmp_path, disk_fills_up, suffix):
    if suffix == ".webm" and "webm" not in video.available_formats():
        pytest.skip("no VP9 encoder")
    path = tmp_path / f"v{suffix}"
    with pytest.raises(WriteError, match="not enough disk space") as e:
        export_video(comp, path, scale=4)
    assert str(path) in str(e.value)
    assert disk_fills_up["n"] > 0
    assert listing(tmp_path) == []


def test_full_disk_frames(comp, tmp_path, disk_fills_up):
    with pytest.raises(WriteError, match="not enough disk space"):
        export_frames(comp, tmp_path / "frames", scale=8)
    assert listing(tmp_path) == []


# ----------------------------------------------------------------------------- CLI


def test_cli_exports_a_saved_trajectory(comp, tmp_path, capsys):
    from ccdm_gui.cli import main
    from ccdm_gui.core.pipeline import save_comparison

    npz = tmp_path / "trajectory.npz"
    save_comparison(comp, npz)
    rc = main(
        [
            "export",
            "--trajectory",
            str(npz),
            "--frames",
            str(tmp_path / "frames"),
            "--video",
            str(tmp_path / "v.gif"),
            "--scale",
            "2",
            "--hold",
            "0",
            "--provenance",
            "entropy",
        ]
    )
    assert rc == 0
    ref = render_frames(comp, View(prov_mode="entropy"), scale=2)
    png = np.asarray(Image.open(tmp_path / "frames" / "frame_004.png").convert("RGB"))
    assert (png == ref[4]).all()
    assert len(decode(tmp_path / "v.gif")[0]) == T
    # Again without --overwrite: refused as a bad argument (status 2) before any frame
    # is drawn, not a traceback, and files untouched.
    rc = main(["export", "--trajectory", str(npz), "--video", str(tmp_path / "v.gif")])
    assert rc == 2 and "already exists" in capsys.readouterr().err
    # Two trajectories as a grid.
    rc = main(
        [
            "export",
            "--trajectory",
            str(npz),
            "--trajectory",
            str(npz),
            "--grid",
            "--video",
            str(tmp_path / "g.mp4"),
            "--scale",
            "1",
            "--hold",
            "0",
        ]
    )
    assert rc == 0 and len(read_metadata(tmp_path / "g.mp4")["runs"]) == 2
