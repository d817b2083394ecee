"""The window, end to end, on a tiny model and dataset made here (offscreen Qt).

Every test runs real comparisons through the real worker thread. A 16x16 ResNet with
one block and 20 training images keep a run around a second on a loaded 2-core box;
tests whose point is not the patch machine use the (cheap) ideal machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from ccdm_gui.app import progress_text  # noqa: E402
from ccdm_gui.app import settings as app_settings  # noqa: E402
from ccdm_gui.core import cancel, denoisers, provenance, render  # noqa: E402
from ccdm_gui.core.checkpoint import ModelInfo, network_params, save_checkpoint  # noqa: E402
from ccdm_gui.core.datasets import load_dataset  # noqa: E402
from ccdm_gui.core.networks import build_network  # noqa: E402
from ccdm_gui.core.view import View  # noqa: E402

STEPS = 4
SUBSET = 20
RUN_TIMEOUT_MS = 120_000


def write_idx(path: Path, arr: np.ndarray) -> None:
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(header + arr.tobytes())


def make_model(path: Path, num_classes: int = 0, padding: str = "zeros") -> Path:
    # Width 16: the embedding heads use GroupNorm(8), which needs two channels per group.
    info = ModelInfo(
        arch="resnet",
        arch_params={"width": 16, "blocks": 1},
        image_size=16,
        num_classes=num_classes,
        padding=padding,
        calibrated_p={m: [3] * 10 + [5] * 10 for m in ("bbels", "els", "ls")},
        name=path.stem,
    )
    torch.manual_seed(0)
    save_checkpoint(path, build_network("resnet", **network_params(info)), info)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    # Continuous-valued images: distinct patches, so the winning candidate is unique.
    data = d / "data"
    data.mkdir()
    write_idx(data / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 16, 16)))
    write_idx(data / "train-labels-idx1-ubyte", rng.integers(0, 10, 40))
    return {
        "model": make_model(d / "tiny.safetensors"),
        "cond": make_model(d / "tiny_cond.safetensors", num_classes=10),
        "data": data,
        "dir": d,
    }


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    path = tmp_path / "settings.ini"
    monkeypatch.setenv(app_settings.ENV_VAR, str(path))
    return path


def options(files, **kw) -> dict:
    base = {
        "model": str(files["model"]),
        "dataset": str(files["data"]),
        "subset": SUBSET,
        "steps": STEPS,
        "seed": 0,
        "device": "cpu",
        "patch_size": "calibrated",
        "machine": "ls",
        "boundary": "zeros",
    }
    base.update(kw)
    return base


@pytest.fixture
def make_window(qtbot):
    from ccdm_gui.app.app import make_app
    from ccdm_gui.app.main_window import MainWindow

    make_app()
    made = []

    def make(opts: dict, wait: bool = True):
        w = MainWindow(opts)
        qtbot.addWidget(w)
        made.append(w)
        w.show()
        if wait:
            wait_ready(qtbot, w)
        return w

    yield make
    for w in made:
        w.close()
        assert w.worker.isFinished()


def wait_ready(qtbot, w):
    with qtbot.waitSignal(w.comparison_ready, timeout=RUN_TIMEOUT_MS) as blocker:
        pass
    if blocker.signal_triggered:
        return blocker.args[0]
    return w.store.comp


def run_until_ready(qtbot, w, action):
    with qtbot.waitSignal(w.comparison_ready, timeout=RUN_TIMEOUT_MS) as blocker:
        action()
    return blocker.args[0]


# --------------------------------------------------------------------------- start


def test_default_start_streams_frames_and_shows_them(qtbot, files, monkeypatch, make_window):
    # No model or dataset named: the window must take the shipped defaults.
    from ccdm_gui.core import resources

    monkeypatch.setattr(resources, "default_model_path", lambda: files["model"])
    monkeypatch.setattr(resources, "default_dataset_path", lambda: files["data"])
    opts = options(files)
    del opts["model"], opts["dataset"]
    from ccdm_gui.app.main_window import MainWindow

    w = MainWindow(opts | {"autostart": False})
    qtbot.addWidget(w)
    seen = []
    w.worker.partial.connect(lambda rid, kind, i, total, traj: seen.append((kind, i)))
    comp = run_until_ready(qtbot, w, w.request)
    try:
        assert w.model_path == str(files["model"])
        assert w.dataset_path == str(files["data"])
        # Frames streamed before the run completed, the machine's one by one.
        assert [i for k, i in seen if k == "machine"] == list(range(STEPS))
        assert w.store.complete and w.store.frames == STEPS
        assert comp.cnn.x0.shape == (STEPS, 1, 16, 16)
        # The screen shows exactly core.render's pixels (export == screen).
        want = render.panel_images(comp, w.step, View())
        for name in ("cnn", "machine", "provenance"):
            np.testing.assert_array_equal(w.panels.items[name].image, want[name])
            cap = w.panels.labels[name].text
            assert "t=" in cap and "P=" in cap and "r=" in cap, cap
        assert w.act_export_frames.isEnabled() and w.act_export_video.isEnabled()
        assert not w.progress.isVisible()
        assert "device: cpu" in w.device_label.text()
    finally:
        w.close()
    assert w.worker.isFinished()


def test_export_disabled_until_complete(qtbot, files, make_window):
    w = make_window(options(files), wait=False)
    assert not w.act_export_frames.isEnabled()
    assert w.cancel_btn.isVisibleTo(w) and w.progress.isVisibleTo(w)
    wait_ready(qtbot, w)
    assert w.act_export_frames.isEnabled()


# --------------------------------------------------------------------------- controls


def test_p_boundary_and_machine_recompute_only_the_machine(qtbot, files, make_window):
    w = make_window(options(files))
    first = w.store.comp
    assert (w.worker.cnn_runs, w.worker.machine_runs) == (1, 1)
    assert first.machine.patch_size.tolist() == [5, 5, 3, 3]  # the calibrated P(t)

    def fixed_p7():
        w.controls.calibrated.setChecked(False)
        w.controls.p_slider.setValue(2)  # P = 3 + 2 * 2

    comp = run_until_ready(qtbot, w, fixed_p7)
    assert comp.spec.patch_size == 7 and comp.machine.patch_size.tolist() == [7] * STEPS
    assert w.worker.cnn_runs == 1 and w.worker.machine_runs == 2
    assert comp.cnn is first.cnn  # the same trajectory object, not a recomputation
    assert not np.array_equal(comp.machine.x0, first.machine.x0)

    def circular():
        w.controls.boundary.setCurrentIndex(w.controls.boundary.findData("circular"))

    comp = run_until_ready(qtbot, w, circular)
    assert (comp.spec.machine, comp.spec.boundary) == ("ls", "circular")
    assert w.worker.cnn_runs == 1 and w.worker.machine_runs == 3
    assert comp.cnn is first.cnn

    def ideal():
        w.controls.machine.setCurrentIndex(w.controls.machine.findData("ideal"))

    comp = run_until_ready(qtbot, w, ideal)
    assert comp.spec.machine == "ideal" and w.worker.cnn_runs == 1
    assert comp.cnn is first.cnn

    # Back to a spec seen before: served from the cache, nothing recomputed.
    def back():
        w.controls.set_state({"machine": "ls", "boundary": "zeros", "patch_size": None})
        w.request()

    comp = run_until_ready(qtbot, w, back)
    assert (w.worker.cnn_runs, w.worker.machine_runs) == (1, 4)
    assert comp.machine is first.machine


def test_seed_and_steps_recompute_the_cnn(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    first = w.store.comp
    comp = run_until_ready(qtbot, w, w.controls.new_seed.click)
    assert comp.spec.seed != first.spec.seed and w.worker.cnn_runs == 2
    assert not np.array_equal(comp.cnn.x_t[0], first.cnn.x_t[0])
    # CNN and machine start from the same noise.
    np.testing.assert_array_equal(comp.cnn.x_t[0], comp.machine.x_t[0])
    comp = run_until_ready(qtbot, w, lambda: w.controls.steps.setValue(STEPS + 1))
    assert len(comp.cnn.t) == STEPS + 1 and w.timeline.slider.maximum() == STEPS
    assert w.worker.cnn_runs == 3


def test_machine_and_boundary_stay_consistent(qtbot, files, make_window):
    w = make_window(options(files, machine="bbels") | {"autostart": False}, wait=False)
    c = w.controls
    c.boundary.setCurrentIndex(c.boundary.findData("circular"))
    assert c.machine.currentData() == "els"
    c.machine.setCurrentIndex(c.machine.findData("bbels"))
    assert c.boundary.currentData() == "zeros"
    c.machine.setCurrentIndex(c.machine.findData("ideal"))
    assert not c.p_slider.isEnabled() and not c.calibrated.isEnabled()


def test_class_label_only_for_conditional_models(qtbot, files, make_window):
    w = make_window(options(files) | {"autostart": False}, wait=False)
    assert not w.controls.label.isEnabled()
    w2 = make_window(
        options(files, model=str(files["cond"]), label=3) | {"autostart": False}, wait=False
    )
    assert w2.controls.label.isEnabled() and w2.controls.label.count() == 10
    assert w2.spec().label == 3


def test_view_changes_and_scrubbing_never_recompute(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    comp = w.store.comp
    requests = w.worker.requests
    c = w.controls
    c.show_mode.setCurrentIndex(c.show_mode.findData("xt"))
    c.diff.setChecked(True)
    assert w.panels.visible_panels == ["cnn", "machine", "provenance", "difference"]
    # Every mode of the table; the tiny dataset has labels, so "label" is offered too.
    for mode in provenance.KEYS:
        assert c.prov_mode.model().item(c.prov_mode.findData(mode)).isEnabled()
        c.prov_mode.setCurrentIndex(c.prov_mode.findData(mode))
        for step in range(STEPS):
            w.timeline.slider.setValue(step)
            want = render.panel_images(comp, step, View("xt", mode, True))
            for name, rgb in want.items():
                np.testing.assert_array_equal(w.panels.items[name].image, rgb)
            assert f"t={comp.cnn.t[step]:.2f}" in w.panels.labels["cnn"].text
    assert w.worker.requests == requests
    assert w.store.comp is comp
    # Redraw from cached frames: generous bound for a loaded CI box; bench/gui_timing.py
    # measures the real figure.
    assert np.median(w.redraw_ms) < 50


def test_playback_and_keyboard_stepping(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    w.activateWindow()
    w.timeline.slider.setValue(0)
    QTest.keyClick(w, Qt.Key.Key_Right)
    QTest.keyClick(w, Qt.Key.Key_Right)
    assert w.step == 2
    QTest.keyClick(w, Qt.Key.Key_Left)
    assert w.step == 1
    w.timeline.fps.setValue(60)
    w.timeline.loop.setChecked(False)
    QTest.keyClick(w, Qt.Key.Key_Space)
    assert w.timeline.play.isChecked()
    qtbot.waitUntil(lambda: not w.timeline.play.isChecked(), timeout=5000)
    assert w.step == STEPS - 1


# --------------------------------------------------------------------------- worker


def on_first_machine_frame(w, gui_action):
    """Run ``gui_action`` on the GUI thread when the first machine frame arrives, holding
    the worker at that frame until it has run: on a starved CPU the worker could
    otherwise finish the whole run before the GUI thread sees its first frame."""
    gate = threading.Event()

    def in_gui(rid, kind, i, total, traj):
        if kind == "machine" and i == 0 and not gate.is_set():
            gui_action()
            gate.set()

    def in_worker(rid, kind, i, total, traj):
        if kind == "machine" and i == 0:
            gate.wait(RUN_TIMEOUT_MS / 1000)

    # Order matters: the queued GUI call is posted before the direct one blocks.
    w.worker.partial.connect(in_gui)
    w.worker.partial.connect(in_worker, Qt.ConnectionType.DirectConnection)
    return gate


def test_cancel_keeps_partial_frames_and_recovers(qtbot, files, make_window):
    w = make_window(options(files, steps=12) | {"autostart": False}, wait=False)
    on_first_machine_frame(w, w.cancel)
    with qtbot.waitSignal(w.worker.cancelled, timeout=RUN_TIMEOUT_MS):
        w.request()
    assert not w.store.complete
    assert 1 <= w.store.frames < 12
    assert not w.act_export_frames.isEnabled() and not w.progress.isVisible()
    assert w.worker.machine_runs == 1
    # Nothing on screen still says it is being computed.
    assert "cancelled" in w.title.text() and "computing" not in w.title.text()
    assert f"computed {w.store.frames} of 12 steps" in w.statusBar().currentMessage()
    comp = run_until_ready(qtbot, w, lambda: w.request(force=True))
    assert len(comp.machine.t) == 12 and w.worker.cnn_runs == 1
    assert "cancelled" not in w.title.text()


def test_progress_counts_the_machine_steps_down(qtbot, files, make_window, monkeypatch):
    # Any time left shows (a test run is too quick for the real threshold).
    monkeypatch.setattr(progress_text, "SHOW_FROM_S", 0.0)
    w = make_window(options(files, steps=12) | {"autostart": False}, wait=False)
    seen = []
    on_first_machine_frame(w, lambda: seen.append(w.progress.format()))
    run_until_ready(qtbot, w, w.request)
    assert len(seen) == 1
    assert " 1/12 · ~" in seen[0] and seen[0].endswith(" left"), seen[0]


def test_newer_request_cancels_older(qtbot, files, make_window):
    w = make_window(options(files, steps=10) | {"autostart": False}, wait=False)
    done, cancelled = [], []
    w.worker.done.connect(lambda rid, comp, timing: done.append((rid, comp.spec.seed)))
    w.worker.cancelled.connect(cancelled.append)

    def newer():
        w.controls.seed.setValue(5)
        w.request()

    on_first_machine_frame(w, newer)
    first = w.request()
    comp = wait_ready(qtbot, w)
    assert comp.spec.seed == 5
    assert first in cancelled
    assert [s for _rid, s in done] == [5]


def test_click_opens_inspector_with_the_true_source(qtbot, files, make_window):
    w = make_window(options(files, machine="bbels"))
    qtbot.waitExposed(w)
    comp = w.store.comp
    step = STEPS - 1
    w.timeline.slider.setValue(step)
    r, c = 9, 14
    box = w.panels.boxes["provenance"]
    scene = box.mapViewToScene(QPointF(c + 0.5, r + 0.5))
    pos = w.panels.view.mapFromScene(scene)
    with qtbot.waitSignal(w.worker.inspected, timeout=RUN_TIMEOUT_MS) as blocker:
        QTest.mouseClick(w.panels.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    res = blocker.args[1]
    assert w.inspector.isVisible() and w.inspector.result is res
    m = comp.machine
    si = int(m.source_index[step, r, c])
    assert res.request.pixel == (r, c)
    assert res.dataset_index == int(m.train_indices[si])
    assert res.request.source_yx == tuple(int(v) for v in m.source_yx[step, r, c])
    full = load_dataset(files["data"], 16, 1)
    np.testing.assert_allclose(res.source_image, full.images[res.dataset_index].numpy())
    assert f"#{res.dataset_index}" in w.inspector.header.text()
    # The heaviest candidate is the winner the trajectory recorded.
    top = res.candidates[0]
    assert len(res.candidates) == 8
    assert (top.subset_index, top.yx) == (si, res.request.source_yx)
    assert top.weight == pytest.approx(float(m.weight[step, r, c]), abs=1e-4)
    weights = [cd.weight for cd in res.candidates]
    assert weights == sorted(weights, reverse=True)


def test_inspection_is_answered_inside_a_machine_step(qtbot, files, make_window, monkeypatch):
    # A pixel clicked while a step runs (half a minute on the whole training set) is
    # answered at the machine's next pause, not after the step.
    w = make_window(options(files, steps=12, machine="bbels") | {"autostart": False}, wait=False)
    entered, clicked, in_step = threading.Event(), threading.Event(), threading.Event()
    answered_in_step = []
    real = denoisers.MachineDenoiser.__call__

    def step(self, x, t):
        if self.last_patch_size is not None and not entered.is_set():  # the second step
            in_step.set()
            entered.set()
            clicked.wait(RUN_TIMEOUT_MS / 1000)
            cancel.check()  # a pause of the machine, as between its chunks of keys
            in_step.clear()
        return real(self, x, t)

    monkeypatch.setattr(denoisers.MachineDenoiser, "__call__", step)
    w.worker.inspected.connect(
        lambda *_: answered_in_step.append(in_step.is_set()), Qt.ConnectionType.DirectConnection
    )
    with qtbot.waitSignal(w.comparison_ready, timeout=RUN_TIMEOUT_MS):
        w.request()
        qtbot.waitUntil(lambda: entered.is_set() and w.store.comp is not None)
        assert w.inspect_pixel("provenance", 5, 6) is not None
        clicked.set()
    assert answered_in_step[:1] == [True]


def test_hover_reports_pixel_values_and_source(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    m = w.store.comp.machine
    step = w.step
    w.panels.hovered.emit("machine", 3, 4)
    msg = w.statusBar().currentMessage()
    si = int(m.source_index[step, 3, 4])
    wt = float(m.weight[step, 3, 4])
    # The tiny dataset's images are all different: one source, its weight its own.
    assert int(m.shared_images[step, 3, 4]) == 1
    assert msg.startswith("row 3, col 4:")
    assert f"source image #{int(m.train_indices[si])}" in msg
    assert f"holds weight {wt:.3f}" in msg
    assert f"= {np.exp(m.entropy[step, 3, 4]):.3g} effective candidates" in msg
    # The same pixel read as a patch that three images share in five copies.
    m.shared_images[step, 3, 4], m.shared_count[step, 3, 4] = 3, 5
    w.panels.hovered.emit("machine", 3, 4)
    msg = w.statusBar().currentMessage()
    assert f"generic patch, in 3 training images (first #{int(m.train_indices[si])}" in msg
    assert f"holds weight {min(1.0, 5 * wt):.3f} (5 identical copies)" in msg


# --------------------------------------------------------------------------- errors, files


def test_corrupt_checkpoint_shows_message_and_keeps_the_old_model(
    qtbot, files, make_window, tmp_path
):
    w = make_window(options(files, machine="ideal"))
    good = w.store.comp
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    with qtbot.waitSignal(w.run_failed, timeout=RUN_TIMEOUT_MS) as blocker:
        w.open_model(str(bad))
    assert "Cannot use this model" in blocker.args[0] and "broken.safetensors" in blocker.args[0]
    assert "Traceback" not in blocker.args[0]
    assert w.banner.isVisible() and "broken.safetensors" in w.banner.text.text()
    assert w.model_path == str(files["model"]) and w.store.comp is good
    assert w.act_export_frames.isEnabled()
    # Still alive and working with the old model.
    comp = run_until_ready(qtbot, w, lambda: w.controls.seed.setValue(3))
    assert comp.spec.model == str(files["model"]) and comp.spec.seed == 3


def test_unreadable_dataset_shows_message_and_keeps_the_old_data(
    qtbot, files, make_window, tmp_path
):
    w = make_window(options(files, machine="ideal"))
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    with qtbot.waitSignal(w.run_failed, timeout=RUN_TIMEOUT_MS) as blocker:
        w.open_dataset(str(empty))
    assert "Cannot use this dataset" in blocker.args[0]
    assert w.dataset_path == str(files["data"]) and w.store.complete


def test_drop_routes_checkpoints_and_datasets(qtbot, files, make_window, tmp_path):
    w = make_window(options(files))
    other = make_model(tmp_path / "other.safetensors", padding="circular")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    ev = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    comp = run_until_ready(qtbot, w, lambda: w.dropEvent(ev))
    assert comp.spec.model == str(other)
    # A circular-padding model opens with its own machine.
    assert (comp.spec.machine, comp.spec.boundary) == ("els", "circular")
    mime2 = QMimeData()
    mime2.setUrls([QUrl.fromLocalFile(str(files["data"]))])
    ev2 = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime2,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    before = w.worker.requests
    w.dropEvent(ev2)  # the same dataset: nothing to recompute
    assert w.dataset_path == str(files["data"]) and w.worker.requests == before


def test_drop_a_diffusers_folder_and_a_paper_checkpoint(qtbot, files, make_window, tmp_path):
    """Both outside formats open by drop (a folder, a .pt) and run a comparison; the
    controls follow what the model is (padding, size)."""
    from test_outside_models_cli import PAPER, tiny_pipeline

    w = make_window(options(files))
    pipe = tiny_pipeline(tmp_path / "pipe")
    paper = PAPER / "backbone_tiny_UNet_circular_conditional.pt"
    for path, arch in ((pipe, "diffusers"), (paper, "paper_unet")):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        ev = QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        )
        comp = run_until_ready(qtbot, w, lambda ev=ev: w.dropEvent(ev))
        assert comp.spec.model == str(path) and w.info.arch == arch
        assert comp.cnn.x0.shape[-1] == w.info.image_size
    # the paper's circular UNet opens with the circular machine and its class count
    assert (comp.spec.machine, comp.spec.boundary) == ("els", "circular")
    assert comp.spec.label is not None


def test_close_while_computing_joins_the_thread(qtbot, files, make_window, monkeypatch):
    # On the tiny data the 30 machine steps can all finish before the first frame's
    # signal reaches this thread; 50 ms per step keeps the worker busy when we close.
    from ccdm_gui.core.denoisers import MachineDenoiser

    step = MachineDenoiser.__call__

    def slow_step(self, x, t):
        time.sleep(0.05)
        return step(self, x, t)

    monkeypatch.setattr(MachineDenoiser, "__call__", slow_step)
    w = make_window(options(files, steps=30, machine="bbels") | {"autostart": False}, wait=False)
    machine_frames = []
    w.worker.partial.connect(
        lambda rid, kind, i, total, t: machine_frames.append(i) if kind == "machine" else None
    )
    w.request()
    qtbot.waitUntil(lambda: bool(machine_frames), timeout=RUN_TIMEOUT_MS)
    assert w.worker.isRunning() and w.worker.busy
    t0 = time.perf_counter()
    w.close()
    assert w.worker.isFinished() and not w.worker.isRunning()
    assert time.perf_counter() - t0 < 20
    assert not w.store.complete


def test_choices_and_geometry_are_remembered(qtbot, files, make_window, private_settings):
    w = make_window(options(files, machine="ideal"))
    run_until_ready(qtbot, w, lambda: w.controls.seed.setValue(7))
    w.controls.prov_mode.setCurrentIndex(w.controls.prov_mode.findData("entropy"))
    # The offscreen screen is 800x600, narrower than the window's minimum width, so
    # width and x are clamped either way; y shows whether the geometry came back.
    w.move(37, 23)
    w.close()
    assert private_settings.exists()
    w2 = make_window({"autostart": False}, wait=False)
    assert w2.controls.seed.value() == 7
    assert w2.model_path == str(files["model"])
    assert w2.controls.prov_mode.currentData() == "entropy"
    assert w2.controls.subset.value() == SUBSET
    assert w2.y() == 23
    s = app_settings.open_settings()
    assert str(files["model"]) in app_settings.recent(s, "models")


def test_screenshot_command(qtbot, files, tmp_path):
    from ccdm_gui.app.app import make_app
    from ccdm_gui.cli import main

    make_app()
    out = tmp_path / "shot.png"
    code = main(
        [
            "gui",
            "--model",
            str(files["model"]),
            "--dataset",
            str(files["data"]),
            "--subset",
            str(SUBSET),
            "--steps",
            str(STEPS),
            "--seed",
            "2",
            "--machine",
            "ideal",
            "--screenshot",
            str(out),
        ]
    )
    assert code == 0
    from PIL import Image

    img = Image.open(out)
    assert img.size[0] > 800 and img.size[1] > 500
    # Not a blank grab: the panels hold many distinct colours.
    colours = np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 50


def test_export_actions_open_the_export_dialog(qtbot, files, make_window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    w = make_window(options(files, machine="ideal"))
    seen = []

    def inspect_and_close(tries=[0]):  # noqa: B006 (a counter shared across retries)
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            tries[0] += 1
            if tries[0] < 200:  # the dialog may take a while to open on a loaded box
                QTimer.singleShot(50, inspect_and_close)
            return
        seen.append(
            (
                type(dlg).__name__,
                getattr(dlg, "comp", None) is w.store.comp,
                getattr(dlg, "kind", None),
            )
        )
        dlg.reject()

    for act, kind in ((w.act_export_video, "video"), (w.act_export_frames, "frames")):
        QTimer.singleShot(50, inspect_and_close)
        act.trigger()
        assert seen[-1] == ("ExportDialog", True, kind)
    assert w.act_export_frames.shortcut().toString() == "Ctrl+E"
    assert w.act_export_video.shortcut().toString() == "Ctrl+Shift+E"


# --------------------------------------------------------------------------- classes
def _fashion_model(path: Path) -> Path:
    info = ModelInfo(
        arch="resnet",
        arch_params={"width": 16, "blocks": 1},
        image_size=16,
        num_classes=10,
        dataset={"id": "fashion-mnist-train-60k"},
        calibrated_p={m: [3] * 20 for m in ("bbels", "ls")},
    )
    torch.manual_seed(1)
    save_checkpoint(path, build_network("resnet", **network_params(info)), info)
    return path


def test_class_picker_names_and_provenance_within_the_class(qtbot, files, make_window):
    model = _fashion_model(files["dir"] / "fashion_cond.safetensors")
    w = make_window(options(files, model=str(model), label=1, subset=3, machine="bbels"))
    combo = w.controls.label
    assert [combo.itemText(k) for k in (0, 1, 9)] == [
        "0 · T-shirt/top",
        "1 · Trouser",
        "9 · Ankle boot",
    ]
    comp = w.store.comp
    assert comp.spec.label == 1
    full = load_dataset(files["data"], 16, 1)
    class1 = np.flatnonzero(full.labels.numpy() == 1)
    # the machine's images are the first 3 of class 1; its sources map back to them
    np.testing.assert_array_equal(comp.machine.train_indices, class1[:3])
    m, step = comp.machine, STEPS - 1
    w.timeline.slider.setValue(step)
    si = int(m.source_index[step, 5, 6])
    w.panels.hovered.emit("machine", 5, 6)
    assert f"#{int(class1[si])} " in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.worker.inspected, timeout=RUN_TIMEOUT_MS) as blocker:
        w.inspect_pixel("provenance", 5, 6)
    res = blocker.args[1]
    assert res.dataset_index == int(class1[si]) and int(full.labels[res.dataset_index]) == 1
    np.testing.assert_allclose(res.source_image, full.images[res.dataset_index].numpy())
    # choosing another class reruns with that class's images
    comp2 = run_until_ready(qtbot, w, lambda: combo.setCurrentIndex(combo.findData(7)))
    assert comp2.spec.label == 7
    np.testing.assert_array_equal(
        comp2.machine.train_indices, np.flatnonzero(full.labels.numpy() == 7)[:3]
    )


def test_opening_a_model_opens_the_dataset_it_was_trained_on(
    qtbot, files, make_window, tmp_path, monkeypatch
):
    from test_known_datasets import debian_layout

    share = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_DIRS", str(share))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    folder, _, _ = debian_layout(share)
    model = _fashion_model(tmp_path / "fashion_cond.safetensors")
    w = make_window(options(files) | {"autostart": False}, wait=False)
    assert w.dataset_path == str(files["data"])
    w.open_model(str(model))
    assert w.dataset_path == str(folder)
    assert w.controls.dataset_label.toolTip() == str(folder)
    # a model of unknown data keeps the dataset that is open
    w.open_model(str(files["model"]))
    assert w.dataset_path == str(folder)
    # at start, without --dataset, the model's own dataset replaces a remembered MNIST
    opts = options(files, model=str(model)) | {"autostart": False}
    del opts["dataset"]
    w2 = make_window(opts, wait=False)
    assert w2.dataset_path == str(folder)


def test_seed_grid_dialog_writes_what_ccdm_grid_writes(qtbot, files, make_window, tmp_path):
    from PIL import Image

    from ccdm_gui.app.grid_dialog import GridDialog
    from ccdm_gui.core.grid import seed_grid
    from ccdm_gui.export.seedgrid import GridComposer

    model = _fashion_model(files["dir"] / "fashion_grid.safetensors")
    w = make_window(
        options(files, model=str(model), label=1, subset=3, machine="ls") | {"autostart": False},
        wait=False,
    )
    assert w.act_export_grid.isEnabled()
    w.act_export_grid.trigger()
    dlg = w.grid_dialog
    assert isinstance(dlg, GridDialog) and dlg.class_combo.currentData() == 1
    assert dlg.class_combo.itemText(0) == "All classes"
    dlg.seeds_edit.setText("0-1")
    png, video = tmp_path / "g.png", tmp_path / "g.gif"
    (tmp_path / "g.gif").write_bytes(b"old")
    assert not dlg.start(str(png), str(video))  # refuses before computing
    assert "already exists" in dlg.message.text() and not png.exists()
    with qtbot.waitSignal(dlg.job_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert dlg.start(str(png), str(video), overwrite=True)
    assert blocker.args[0], blocker.args[1]
    spec = w.spec()
    g = seed_grid(
        spec.model,
        spec.dataset,
        [1],
        [0, 1],
        steps=STEPS,
        subset=3,
        machine="ls",
        boundary="zeros",
    )
    want = GridComposer(g, 3).frame(None)
    np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), want)
    assert video.read_bytes()[:3] == b"GIF"
    # Escape during a grid cancels it, writes nothing and closes once the worker is done.
    before = png.read_bytes(), video.read_bytes()
    with qtbot.waitSignal(dlg.job_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert dlg.start(str(png), str(video), overwrite=True)
        assert dlg.close_button.text() == "Cancel seed grid"
        dlg.reject()
        assert dlg.isVisible()
    assert blocker.args == [False, "Seed grid cancelled; nothing was written."]
    qtbot.waitUntil(lambda: not dlg.isVisible())
    assert (png.read_bytes(), video.read_bytes()) == before
    assert dlg.start_button.isEnabled() and dlg.close_button.text() == "Close"


def test_subset_all_runs_on_the_whole_training_set(qtbot, files, make_window, private_settings):
    from ccdm_gui.core.pipeline import load_model, load_training_images

    w = make_window(options(files) | {"autostart": False}, wait=False)
    w.controls.subset.setValue(0)
    assert w.controls.subset.text() == "all"
    spec = w.spec()
    assert spec.subset is None
    info = load_model(spec.model).info
    assert len(load_training_images(spec, info).images) == len(load_dataset(spec.dataset).images)
    w.close()
    w2 = make_window({"autostart": False}, wait=False)
    assert w2.controls.subset.text() == "all" and w2.spec().subset is None
