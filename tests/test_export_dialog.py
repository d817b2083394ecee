"""The export dialog runs real exports off the GUI thread and reports in the dialog."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from ccdm_gui.app.export_dialog import ExportDialog  # noqa: E402
from ccdm_gui.core.spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec  # noqa: E402
from ccdm_gui.core.view import View  # noqa: E402
from ccdm_gui.export import SIDECAR, render_frames  # noqa: E402


def make_comparison(T=5, seed=0) -> Comparison:
    rng = np.random.default_rng(seed)
    t = np.arange(T, 0, -1) / T

    def imgs():
        return rng.uniform(-1.0, 1.0, (T, 1, 32, 32)).astype(np.float32)

    cnn = CNNTrajectory(t=t, x_t=imgs(), x0=imgs(), final=imgs()[-1])
    mach = MachineTrajectory(
        t=t,
        patch_size=np.full(T, 7),
        x_t=imgs(),
        x0=imgs(),
        source_index=rng.integers(0, 20, (T, 32, 32)),
        source_yx=rng.integers(0, 32, (T, 32, 32, 2)),
        weight=rng.uniform(0, 1, (T, 32, 32)).astype(np.float32),
        entropy=rng.uniform(0, 5, (T, 32, 32)).astype(np.float32),
        final=imgs()[-1],
        train_indices=np.arange(20),
    )
    spec = RunSpec(model="m.safetensors", dataset="mnist", subset=20, seed=seed, steps=T)
    return Comparison(spec=spec, cnn=cnn, machine=mach, correlation=rng.uniform(0, 1, T))


VIEW = View(prov_mode="weight", diff=True)


def run(qtbot, dlg: ExportDialog, path, **kw) -> tuple[bool, str]:
    with qtbot.waitSignal(dlg.job_finished, timeout=30000) as blocker:
        assert dlg.start_export(path, **kw)
        assert dlg.running
    assert not dlg.running
    return tuple(blocker.args)


def test_video_export_through_the_dialog(qtbot, tmp_path):
    comp = make_comparison()
    dlg = ExportDialog(None, comp, VIEW, "video")
    qtbot.addWidget(dlg)
    # The view the app passed in is the starting point.
    assert dlg.options()["view"] == VIEW
    dlg.scale_spin.setValue(2)
    dlg.fps_spin.setValue(5)
    dlg.hold_spin.setValue(0.4)
    ok, msg = run(qtbot, dlg, tmp_path / "out.mp4")
    assert ok, msg
    assert str(tmp_path / "out.mp4") in msg and dlg.message.text() == msg
    assert dlg.progress.value() == 5
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.video[0].average_rate == 5
    ref = render_frames(comp, View(prov_mode="weight", diff=True), scale=2)
    assert len(frames) == 5 + 2 and frames[0].shape == ref[0].shape
    h, w, _ = ref[0].shape
    assert dlg.size_label.text() == f"{w} × {h} pixels"


def test_gif_format_switch_updates_suffix_and_quality(qtbot, tmp_path):
    dlg = ExportDialog(None, make_comparison(), VIEW, "video")
    qtbot.addWidget(dlg)
    dlg.path_edit.setText(str(tmp_path / "clip.mp4"))
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("gif"))
    assert dlg.path_edit.text().endswith("clip.gif")
    assert not dlg.quality_spin.isEnabled() and dlg.options()["quality"] is None
    dlg.scale_spin.setValue(1)
    ok, msg = run(qtbot, dlg, tmp_path / "clip.gif")
    assert ok, msg
    with Image.open(tmp_path / "clip.gif") as im:
        assert im.n_frames == 5


def test_frames_export_through_the_dialog_is_exact(qtbot, tmp_path):
    comp = make_comparison()
    dlg = ExportDialog(None, comp, View(show="xt"), "frames")
    qtbot.addWidget(dlg)
    dlg.scale_spin.setValue(3)
    ok, msg = run(qtbot, dlg, tmp_path / "frames")
    assert ok, msg
    ref = render_frames(comp, View(show="xt"), scale=3)
    got = np.asarray(Image.open(tmp_path / "frames" / "frame_004.png").convert("RGB"))
    assert (got == ref[4]).all()
    assert (tmp_path / "frames" / SIDECAR).exists()


def test_cancel_leaves_nothing(qtbot, tmp_path):
    comp = make_comparison(T=60)
    dlg = ExportDialog(None, comp, VIEW, "video")
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.job_finished, timeout=30000) as blocker:
        dlg.start_export(tmp_path / "long.mp4")
        dlg.cancel()
    ok, msg = blocker.args
    assert not ok and "cancelled" in msg
    assert list(tmp_path.iterdir()) == []
    assert dlg.start_button.isEnabled()


def test_errors_are_messages_not_tracebacks(qtbot, tmp_path):
    dlg = ExportDialog(None, make_comparison(), VIEW, "video")
    qtbot.addWidget(dlg)
    (tmp_path / "taken.mp4").write_bytes(b"keep")
    ok, msg = run(qtbot, dlg, tmp_path / "taken.mp4")
    assert not ok and "already exists" in msg and "Traceback" not in dlg.message.text()
    assert (tmp_path / "taken.mp4").read_bytes() == b"keep"
    ok, msg = run(qtbot, dlg, tmp_path / "missing" / "x.mp4")
    assert not ok and "does not exist" in msg


@pytest.mark.parametrize("answer", [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
def test_export_button_asks_before_replacing(qtbot, tmp_path, monkeypatch, answer):
    dlg = ExportDialog(None, make_comparison(), VIEW, "video")
    qtbot.addWidget(dlg)
    dlg.scale_spin.setValue(1)
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    dlg.path_edit.setText(str(target))
    asked = []
    # Stand in for the user's click on the modal question.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or answer)
    if answer == QMessageBox.StandardButton.No:
        dlg.start_button.click()
        assert asked and not dlg.running and target.read_bytes() == b"old"
        return
    with qtbot.waitSignal(dlg.job_finished, timeout=30000) as blocker:
        dlg.start_button.click()
    assert asked and blocker.args[0] is True
    assert target.read_bytes() != b"old"


def test_closing_during_an_export_cancels_first(qtbot, tmp_path):
    dlg = ExportDialog(None, make_comparison(T=60), VIEW, "frames")
    qtbot.addWidget(dlg)
    dlg.show()
    with qtbot.waitSignal(dlg.job_finished, timeout=30000) as blocker:
        dlg.start_export(tmp_path / "frames")
        dlg.reject()  # Escape / window close while running
        assert dlg.isVisible()  # waits for the worker instead of dropping it
    assert blocker.args[0] is False
    qtbot.waitUntil(lambda: not dlg.isVisible())
    assert list(tmp_path.iterdir()) == []


def test_format_labels_come_from_the_format_table(qtbot, monkeypatch):
    from ccdm_gui import export
    from ccdm_gui.export.formats import VideoFormat

    # A format the dialog has never heard of: its label is read from the table.
    monkeypatch.setitem(export.FORMATS, "mkv", VideoFormat("mkv", "Matroska", "ffv1", None, None))
    dlg = ExportDialog(None, make_comparison(), VIEW, "video")
    qtbot.addWidget(dlg)
    texts = {dlg.format_combo.itemData(i): dlg.format_combo.itemText(i) for i in range(4)}
    assert texts == {name: f.label for name, f in export.FORMATS.items()}
    # Modes needing class labels are offered only when the run has them.
    modes = [dlg.prov_combo.itemData(i) for i in range(dlg.prov_combo.count())]
    assert "label" not in modes and "source" in modes
