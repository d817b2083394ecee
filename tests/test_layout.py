"""The window's geometry at the sizes a user meets: views that re-fit, an inspector and
captions that fit at the minimum size, and the small things (scrollbars, status, titles,
restored choices). Offscreen Qt, real runs on the tiny model of test_app (ideal machine,
the cheap one, where the machine does not matter)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("pytestqt")

import test_app  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from test_app import STEPS, SUBSET, options, run_until_ready, wait_ready  # noqa: E402

from ccdm_gui.app import settings as app_settings  # noqa: E402
from ccdm_gui.app.main_window import MIN_HEIGHT, MIN_WIDTH  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# test_app's window fixtures: a tiny model and dataset, a window that is closed and
# joined after the test, and private settings.
files = test_app.files
make_window = test_app.make_window
private_settings = test_app.private_settings


def settle(qtbot, w, width: int, height: int) -> None:
    w.resize(width, height)
    qtbot.waitUntil(lambda: (w.width(), w.height()) == (width, height), timeout=5000)
    for _ in range(3):  # layout, then the queued re-fit, then its repaint
        QApplication.processEvents()
        qtbot.wait(20)


def image_px(w) -> float:
    """Screen pixels per image pixel in the panels."""
    box = w.panels.boxes["cnn"]
    (x0, x1), _ = box.viewRange()
    return box.width() / (x1 - x0)


def fitted_px(w) -> float:
    """What image_px would be with the image fitted to the current box."""
    box = w.panels.boxes["cnn"]
    h, wd = w.panels.image_shape()
    return min(box.width() / wd, box.height() / h) / 1.04  # setRange's 2 % padding


def test_views_refit_whenever_their_size_changes_unless_zoomed(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    settle(qtbot, w, 1560, 960)
    big = image_px(w)
    assert big == pytest.approx(fitted_px(w), rel=0.03)
    settle(qtbot, w, MIN_WIDTH, MIN_HEIGHT)
    assert image_px(w) < 0.8 * big
    assert image_px(w) == pytest.approx(fitted_px(w), rel=0.03)
    settle(qtbot, w, 1560, 960)
    assert image_px(w) == pytest.approx(big, rel=0.03)
    # The difference panel narrows every panel; turning it off widens them again.
    w.controls.diff.setChecked(True)
    settle(qtbot, w, 1560, 960)
    assert image_px(w) == pytest.approx(fitted_px(w), rel=0.03)
    w.controls.diff.setChecked(False)
    settle(qtbot, w, 1560, 960)
    assert image_px(w) == pytest.approx(big, rel=0.03)

    # A user's zoom (mouse wheel) is kept across resizes until Reset zoom.
    view = w.panels.view
    centre = view.mapFromScene(w.panels.boxes["cnn"].sceneBoundingRect().center())
    wheel = QWheelEvent(
        QPointF(centre),
        QPointF(view.viewport().mapToGlobal(centre)),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), wheel)
    assert w.panels.user_zoomed
    assert image_px(w) > 1.2 * big
    settle(qtbot, w, 1200, 800)
    (x0, x1), _ = w.panels.boxes["cnn"].viewRange()
    assert x1 - x0 < w.panels.image_shape()[1]  # still zoomed in, not re-fitted
    w.panels.reset_zoom()
    assert not w.panels.user_zoomed
    assert image_px(w) == pytest.approx(fitted_px(w), rel=0.03)

    # Opening and closing the inspector: it goes beside the panels at this width, and
    # the panels follow both ways.
    settle(qtbot, w, 1560, 960)
    w.inspect_pixel("cnn", 2, 3)
    settle(qtbot, w, 1560, 960)
    assert w.dockWidgetArea(w.inspector) == Qt.DockWidgetArea.RightDockWidgetArea
    assert not w.tabifiedDockWidgets(w.inspector)
    assert image_px(w) < big and image_px(w) == pytest.approx(fitted_px(w), rel=0.03)
    w.inspector.close()
    settle(qtbot, w, 1560, 960)
    assert image_px(w) == pytest.approx(big, rel=0.03)


def _no_overlap(rects) -> bool:
    return not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])


def test_inspector_and_captions_fit_at_the_minimum_size(qtbot, files, make_window):
    w = make_window(options(files, machine="bbels"))
    w.controls.diff.setChecked(True)
    settle(qtbot, w, MIN_WIDTH, MIN_HEIGHT)
    w.timeline.slider.setValue(STEPS - 1)
    with qtbot.waitSignal(w.worker.inspected, timeout=60_000):
        w.inspect_pixel("provenance", 8, 8)
    settle(qtbot, w, MIN_WIDTH, MIN_HEIGHT)
    assert w.inspector.isVisible()
    assert w.tabifiedDockWidgets(w.inspector) == [w.controls_dock]
    # The inspector lies inside the window (a tab over the Run dock at this width) and
    # shows its content without a horizontal scrollbar.
    geo = w.inspector.geometry()
    assert geo.left() >= 0 and geo.right() < w.width()
    scroll = w.inspector.widget()
    assert not scroll.horizontalScrollBar().isVisible()
    assert scroll.widget().width() <= scroll.viewport().width()
    # Four panels (in a 2 x 2 grid here), each still a usable size, with captions never
    # over each other, each no wider than its panel.
    assert w.panels.visible_panels == ["cnn", "machine", "provenance", "difference"]
    boxes = [w.panels.boxes[n] for n in w.panels.visible_panels]
    assert min(b.width() for b in boxes) >= 140
    assert min(b.height() for b in boxes) >= 140
    assert _no_overlap([b.sceneBoundingRect() for b in boxes])
    labels = [w.panels.labels[n] for n in w.panels.visible_panels]
    for label in labels:
        assert label.text and label.shown
        assert label.text_width() <= label.width(), (label.shown, label.width())
    assert _no_overlap([lb.sceneBoundingRect() for lb in labels])
    # The colour key's entries stay inside it (they elide).
    assert w.legend.cats.isVisible()
    assert w.legend.cats.geometry().right() <= w.legend.width()
    # The controls, the timeline and the plots are all on screen, none over another.
    tl = w.timeline
    assert tl.slider.isVisible() and tl.slider.width() >= 100
    parts = [tl.prev, tl.play, tl.next, tl.slider, tl.where, tl.fps, tl.loop]
    assert _no_overlap([x.geometry() for x in parts])
    assert all(x.width() >= x.minimumSizeHint().width() for x in parts)
    assert tl.geometry().right() < tl.parentWidget().width()
    assert w.plots.isVisible() and w.plots.height() >= 100
    # The Run dock never needs a horizontal scrollbar.
    dock_scroll = w.controls_dock.widget()
    assert not dock_scroll.horizontalScrollBar().isVisible()
    assert w.controls.width() <= dock_scroll.viewport().width()


def test_colour_key_entries_show_their_words(qtbot, files, make_window):
    """Each entry of the mosaic's key is a swatch with its words beside it, in full at
    the default size and at least a few letters at the minimum size."""
    w = make_window(options(files, machine="bbels"))
    for width, height in ((1560, 960), (MIN_WIDTH, MIN_HEIGHT)):
        settle(qtbot, w, width, height)
        entries = w.store.legend(w.step, "mosaic").colors
        assert len(entries) >= 2
        shown = [text for sw, text in w.legend.swatches if sw.isVisible()]
        assert [t.text() for t in shown] == [label for label, _ in entries]
        for t in shown:
            assert t.isVisible() and t.width() >= 40, (t.text(), t.width())
            if width == 1560:
                assert t.shown_text() == t.text(), (t.shown_text(), t.text())
            else:
                assert len(t.shown_text().rstrip("\u2026")) >= 4, t.shown_text()


def test_window_has_a_minimum_size(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal", autostart=False), wait=False)
    w.resize(640, 480)
    QApplication.processEvents()
    assert (w.width(), w.height()) == (MIN_WIDTH, MIN_HEIGHT)


def test_switching_provenance_mode_does_not_move_the_panels(qtbot, files, make_window):
    w = make_window(options(files, machine="bbels"))
    settle(qtbot, w, 1560, 960)
    box = w.panels.boxes["cnn"]
    before = (box.sceneBoundingRect(), w.legend.height())
    for i in range(w.controls.prov_mode.count()):
        w.controls.prov_mode.setCurrentIndex(i)
        settle(qtbot, w, 1560, 960)
        assert (box.sceneBoundingRect(), w.legend.height()) == before, i


def test_status_title_and_hover_say_what_is_true(qtbot, files, make_window):
    w = make_window(options(files, machine="ideal"))
    assert w.timing_label.text()  # the finished run's timings
    # A computation under way shows no timings of the run before it.
    w.controls.seed.setValue(3)
    w.request()
    assert w.timing_label.text() == ""
    comp = wait_ready(qtbot, w)
    # The title counts the training images the machine drew from, not the subset asked.
    assert f"N={SUBSET}" in w.title.text()
    big = run_until_ready(qtbot, w, lambda: w.controls.subset.setValue(10_000))
    assert len(big.machine.train_indices) == 40 and "N=40 " in w.title.text()
    w.panels.hovered.emit("machine", 3, 4)
    assert w.statusBar().currentMessage().startswith("row 3, col 4:")
    assert comp is not None


def test_recent_labels_tell_same_names_apart():
    labels = app_settings.recent_labels(
        ["/a/x/model.pt", "/a/y/model.pt", "/b/data", "/c/y/model.pt", "/q/other.npz"]
    )
    assert labels == [
        "model.pt \u2014 x",
        "model.pt \u2014 a/y",
        "data",
        "model.pt \u2014 c/y",
        "other.npz",
    ]
    assert len(set(labels)) == len(labels)


def test_restored_choices_are_named_and_reset_to_defaults(qtbot, files, make_window, monkeypatch):
    from ccdm_gui.core import resources

    monkeypatch.setattr(resources, "default_model_path", lambda: files["model"])
    monkeypatch.setattr(resources, "default_dataset_path", lambda: files["data"])
    s = app_settings.open_settings()
    s.setValue("last/subset", 7)
    s.setValue("last/seed", 4)
    s.setValue("last/machine", "ideal")
    s.sync()
    w = make_window({"steps": STEPS, "autostart": False}, wait=False)
    text = w.restored.text()
    assert w.restored.isVisibleTo(w)
    assert "subset 7" in text and "seed 4" in text and "Reset to defaults" in text
    assert "steps" not in text  # given on the command line
    assert w.controls.subset.value() == 7
    w.reset_to_defaults()
    assert not w.restored.isVisibleTo(w)
    v = w.controls.values()
    assert (v["subset"], v["seed"], v["machine"], v["patch_size"]) == (1000, 0, "bbels", None)
    s = app_settings.open_settings()
    assert s.value("last/subset") is None
    w.cancel()
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=60_000)
