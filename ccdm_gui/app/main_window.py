"""The main window: controls on the left, linked panels, timeline and plots in the middle,
the pixel inspector on the right. It owns the one worker thread and mirrors its results.

What recomputes what: every control builds a RunSpec and hands it to the worker, whose
TrajectoryCache keys the CNN part by ``spec.cnn_key()``; so P, boundary, machine and
dataset changes rerun only the machine, and view changes (x_t / x0_hat, provenance mode,
difference) and scrubbing only redraw from frames already here.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core import loaders, provenance, render
from ..core import machine_registry as machines
from ..core.checkpoint import ModelInfo
from ..core.datasets.known import class_names, matching_dataset
from ..core.devices import available_devices
from ..core.pipeline import schedule_for
from ..core.spec import Comparison, RunSpec
from ..core.view import DEFAULT_VIEW, View
from . import progress_text
from . import settings as st
from .controls import SPEC_FIELDS, ControlPanel, Timeline
from .elided import ElidedLabel
from .frames import FrameStore
from .inspector import Inspector
from .panels import ImagePanels, LegendWidget
from .plots import Plots
from .startfiles import absolute, default_for, fallback_note, opening_files
from .worker import InspectRequest, Worker

# Controls whose change only redraws (the fields of View); the others start a run.
VIEW_FIELDS = frozenset(f.name for f in dataclasses.fields(View))
# As `ccdm evaluate`; one bbELS comparison at this size takes about 20 s on a 2-core CPU.
GUI_DEFAULT_SUBSET = 1000
# Below this the panels, captions and the timeline no longer fit beside the Run dock.
MIN_WIDTH, MIN_HEIGHT = 1024, 700
# The inspector opens beside the panels only if that leaves them this much width.
MIN_PANELS_WIDTH = 600
# Debounce for controls that fire while dragged (the P slider, spin boxes held down):
# the newest request cancels the older one anyway, this just avoids starting runs that
# would be cancelled a few milliseconds later.
REQUEST_DELAY_MS = 150


def _fmt_s(seconds: float, cached: bool) -> str:
    return "cached" if cached else f"{seconds:.1f} s"


class Banner(QFrame):
    """An inline, non-blocking error message above the panels."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(
            "Banner { background: #5a1f1f; border: 1px solid #a33; border-radius: 3px; }"
            "QLabel { color: #fdd; }"
        )
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.text, 1)
        lay.addWidget(close)
        self.hide()

    def show_message(self, msg: str) -> None:
        self.text.setText(msg)
        self.show()


def source_readout(m, step: int, r: int, c: int, full: int) -> str:
    """Where pixel (r, c) came from, as the hover readout says it: the source image, or
    a generic patch with how many training images share it; the weight its patch holds
    (all identical copies together) and the effective number of candidates."""
    f = provenance.Frame(m, step)
    sy, sx = (int(v) for v in m.source_yx[step, r, c])
    images = int(provenance.shared_images(f)[r, c])
    held = float(provenance.patch_weight(f)[r, c])
    copies = 1 if m.shared_count is None else int(m.shared_count[step, r, c])
    entropy = float(m.entropy[step, r, c])
    where = f"at (row {sy}, col {sx})"
    if images > 1:
        what = f"generic patch, in {images} training images (first #{full} {where})"
    else:
        what = f"source image #{full} {where}"
    many = f" ({copies} identical copies)" if copies > 1 else ""
    return (
        f"{what}; its patch holds weight {held:.3f}{many}; entropy {entropy:.2f} nats = "
        f"{np.exp(entropy):.3g} effective candidates"
    )


class MainWindow(QMainWindow):
    comparison_ready = Signal(object)  # Comparison, each time a run completes
    run_failed = Signal(str)

    def __init__(self, options: dict | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        options = dict(options or {})
        self.settings = st.open_settings()
        self.setWindowTitle("ccdm-gui")
        self.setAcceptDrops(True)
        self.store = FrameStore()
        self.view_state = View()
        self.info: ModelInfo | None = None
        self.good: Comparison | None = None
        self.rid = 0
        self.step = 0
        self.follow_live = True
        self.last_error = ""
        self.redraw_ms: list[float] = []
        self.first_frame_at: float | None = None  # perf_counter of the first frame shown
        self._requested: RunSpec | None = None
        self._inspect_id = 0
        self._run_started = 0.0
        # A screenshot run is a tool, not a session: it leaves the user's settings alone.
        self._no_save = bool(options.get("screenshot"))

        self.worker = Worker(self)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.partial.connect(self._on_partial)
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.inspected.connect(self._on_inspected)

        self._build_ui()
        self._build_menus()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(REQUEST_DELAY_MS)
        self._debounce.timeout.connect(self.request)
        self._player = QTimer(self)
        self._player.timeout.connect(self._tick)

        self._note_rid: int | None = None  # the run a fallback note explains
        self._restore(options)
        self.worker.start()
        if options.get("autostart", True):
            self.request()
        if self._notes:
            self._note(" ".join(self._notes))

    # ================================================================ layout
    def _build_ui(self) -> None:
        self.controls = ControlPanel(available_devices())
        self.controls.changed.connect(self._on_control)
        self.controls.open_model.connect(self.choose_model)
        self.controls.open_dataset.connect(self.choose_dataset)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.controls)
        # The controls scroll only vertically (at short windows); the dock is as wide as
        # they need plus room for that scrollbar, so no horizontal bar ever appears.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(
            self.controls.minimumSizeHint().width()
            + scroll.verticalScrollBar().sizeHint().width()
            + 2 * scroll.frameWidth()
        )
        self.controls_dock = QDockWidget("Run", self)
        self.controls_dock.setObjectName("controls")
        self.controls_dock.setWidget(scroll)
        self.controls_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.controls_dock)

        self.banner = Banner()
        self.title = ElidedLabel()
        self.title.setStyleSheet("font-weight: bold; padding: 2px 4px;")
        # What came from the last session rather than from the defaults or the command
        # line, so a remembered subset or model never silently overrides launch.sh.
        self.restored = ElidedLabel()
        self.restored.setStyleSheet("color: #c8b26a; padding: 2px 4px;")
        self.restored.hide()
        self.panels = ImagePanels()
        self.panels.hovered.connect(self._on_hover)
        self.panels.clicked.connect(self.inspect_pixel)
        self.panels.zoomed.connect(self._on_zoomed)
        self.legend = LegendWidget()
        self.diff_legend = LegendWidget()
        self.diff_legend.hide()
        legends = QHBoxLayout()
        legends.addWidget(self.legend, 1)
        legends.addWidget(self.diff_legend, 0)
        self.timeline = Timeline()
        self.timeline.step_changed.connect(self._on_scrub)
        self.timeline.play_toggled.connect(self._on_play)
        self.timeline.fps.valueChanged.connect(self._on_fps)
        self.plots = Plots()
        self.plots.marker_moved.connect(self._on_marker)

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(4, 4, 4, 0)
        tl.addWidget(self.banner)
        tl.addWidget(self.title)
        tl.addWidget(self.restored)
        tl.addWidget(self.panels, 1)
        tl.addLayout(legends)
        tl.addWidget(self.timeline)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.plots)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        self.setCentralWidget(split)

        self.inspector = Inspector(self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.inspector)
        self.inspector.hide()

        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("stop the running computation (Esc)")
        self.cancel_btn.clicked.connect(self.cancel)
        self.cancel_btn.hide()
        self.timing_label = QLabel("")
        self.device_label = QLabel("")
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_btn)
        sb.addPermanentWidget(self.timing_label)
        sb.addPermanentWidget(self.device_label)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self.act_open_model = self._action(file, "Open &model…", "Ctrl+O", self.choose_model)
        self.act_open_dataset = self._action(file, "Open &dataset…", "Ctrl+D", self.choose_dataset)
        self.recent_menu = file.addMenu("&Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file.addSeparator()
        self.act_export_frames = self._action(
            file, "&Export frames…", "Ctrl+E", lambda: self.export("frames")
        )
        self.act_export_video = self._action(
            file, "Export &video…", "Ctrl+Shift+E", lambda: self.export("video")
        )
        self.act_export_frames.setEnabled(False)
        self.act_export_video.setEnabled(False)
        self.act_export_grid = self._action(file, "Export seed &grid…", None, self.export_grid)
        file.addSeparator()
        self._action(file, "Reset to &defaults", None, self.reset_to_defaults)
        file.addSeparator()
        self._action(file, "&Quit", QKeySequence.StandardKey.Quit, self.close)

        run = mb.addMenu("&Run")
        self._action(run, "&Recompute", "F5", lambda: self.request(force=True))
        self._action(run, "&Cancel", "Esc", self.cancel)
        self._action(run, "&New seed", "Ctrl+N", self.controls.new_seed.click)

        view = mb.addMenu("&View")
        self.act_play = self._action(view, "&Play / pause", "Space", self.timeline.play.toggle)
        self._action(view, "Step &back", "Left", lambda: self._step_by(-1))
        self._action(view, "Step &forward", "Right", lambda: self._step_by(1))
        self._action(view, "&First frame", "Home", lambda: self._go(0))
        self._action(view, "&Last frame", "End", lambda: self._go(self.store.frames - 1))
        view.addSeparator()
        self._action(view, "Reset &zoom", "Ctrl+0", self.panels.reset_zoom)
        view.addAction(self.controls_dock.toggleViewAction())
        view.addAction(self.inspector.toggleViewAction())

        helpm = mb.addMenu("&Help")
        self._action(helpm, "&About ccdm-gui", None, self.about)

    def _action(self, menu, text, shortcut, slot) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        self.addAction(act)
        return act

    # ================================================================ state
    def _restore(self, opt: dict) -> None:
        s = self.settings
        self.setMinimumSize(MIN_WIDTH, MIN_HEIGHT)
        geo = s.value("window/geometry")
        if isinstance(geo, QByteArray) and not opt.get("screenshot"):
            self.restoreGeometry(geo)
        else:
            self.resize(1560, 960)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.inspector.hide()

        restored: dict[str, object] = {}

        def pick(key, default, kind=None):
            if opt.get(key) is not None:
                return opt[key]
            value = st.get(s, f"last/{key}", default, kind)
            if value != default:
                restored[key] = value
            return value

        self.model_path, self.dataset_path, self._notes = opening_files(opt, s)
        for kind, path in (("model", self.model_path), ("dataset", self.dataset_path)):
            if opt.get(kind) is None and path != default_for(kind):
                restored[kind] = path
        info = self._peek_info(self.model_path)
        if opt.get("dataset") is None and info is not None:
            # The remembered dataset gives way to the model's own when it is another kind.
            self.dataset_path = str(
                matching_dataset(info.dataset, self.dataset_path) or self.dataset_path
            )
        # A model named on the command line gets its own padding's machine and boundary.
        fresh = opt.get("model") is not None and info is not None
        padding = info.padding if fresh else "zeros"
        machine = str(pick("machine", machines.default_machine(padding), str))
        if machine not in machines.MACHINES:
            machine = machines.default_machine(padding)
        boundary = str(pick("boundary", padding, str))
        boundary = machines.fit_boundary(machine, boundary)
        p = pick("patch_size", "calibrated", str)
        patch_size = None if p in (None, "calibrated", "") else int(p)
        devices = available_devices()
        device = str(pick("device", devices[0], str))
        if device not in devices:
            device = devices[0]
        values = {
            "subset": int(pick("subset", GUI_DEFAULT_SUBSET, int)),
            "seed": int(pick("seed", 0, int)),
            "steps": int(pick("steps", 20, int)),
            "device": device,
            "machine": machine,
            "boundary": boundary,
            "patch_size": patch_size,
            "label": opt.get("label"),
        }
        if info is not None:
            self._apply_info(info)
        saved = DEFAULT_VIEW
        try:
            saved = View(
                show=pick("show", DEFAULT_VIEW.show, str),
                prov_mode=pick("prov_mode", DEFAULT_VIEW.prov_mode, str),
                diff=pick("diff", DEFAULT_VIEW.diff, bool),
            )
        except ValueError:  # settings from another version: start from the default view
            pass
        self.controls.set_state(values, saved)
        self.timeline.fps.setValue(st.get(s, "last/fps", 6, int))
        self.timeline.loop.setChecked(st.get(s, "last/loop", True, bool))
        self.view_state = self.controls.view()
        self.panels.set_panels(self.view_state.panels)
        self.controls.set_paths(self.model_path, self.dataset_path)
        self.device_label.setText(f"device: {device}")
        self._show_restored(restored)

    def _show_restored(self, restored: dict) -> None:
        """Name the choices taken from the last session (not from the defaults or the
        command line) above the panels, with the way back to the defaults."""
        self.restored_choices = dict(restored)
        if not restored:
            self.restored.hide()
            return
        names = {"model": Path, "dataset": Path}
        parts = []
        for key, value in restored.items():
            if key in names:
                value = Path(str(value)).name
            parts.append(f"{key.replace('_', ' ')} {value}")
        self.restored.setText(
            "restored from the last session: " + ", ".join(parts) + "  (File > Reset to defaults)"
        )
        self.restored.setToolTip(self.restored.text())
        self.restored.show()

    def reset_to_defaults(self) -> int | None:
        """Forget the remembered choices and run the defaults ``launch.sh`` promises."""
        st.forget_choices(self.settings)
        self.model_path = default_for("model")
        self.dataset_path = default_for("dataset")
        info = self._peek_info(self.model_path)
        if info is not None:
            self._apply_info(info)
        self.controls.set_state(
            {
                "subset": GUI_DEFAULT_SUBSET,
                "seed": 0,
                "steps": 20,
                "device": available_devices()[0],
                "machine": machines.default_machine("zeros"),
                "boundary": "zeros",
                "patch_size": None,
            },
            DEFAULT_VIEW,
        )
        self.timeline.fps.setValue(6)
        self.timeline.loop.setChecked(True)
        self.controls.set_paths(self.model_path, self.dataset_path)
        self.view_state = self.controls.view()
        self.panels.set_panels(self.view_state.panels)
        self._show_restored({})
        return self.request()

    def _save(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        good = self.good.spec if self.good is not None else None
        s.setValue("last/model", good.model if good else self.model_path)
        s.setValue("last/dataset", good.dataset if good else self.dataset_path)
        v = self.controls.values()
        for k in ("subset", "seed", "steps", "device", "machine", "boundary"):
            s.setValue(f"last/{k}", v[k] or 0 if k == "subset" else v[k])
        p = v["patch_size"]
        s.setValue("last/patch_size", "calibrated" if p is None else str(p))
        for k, val in dataclasses.asdict(self.controls.view()).items():
            s.setValue(f"last/{k}", val)
        s.setValue("last/fps", self.timeline.fps.value())
        s.setValue("last/loop", self.timeline.loop.isChecked())
        s.sync()

    @staticmethod
    def _peek_info(path: str) -> ModelInfo | None:
        """Header-only metadata read (no weights), to set up the controls at once; the
        worker's full load is what validates the file."""
        try:
            return loaders.read_info(path)
        except Exception:
            return None

    def _apply_info(self, info: ModelInfo) -> None:
        self.info = info
        self.controls.set_image_size(info.image_size)
        self.controls.set_num_classes(
            info.num_classes, class_names(info.dataset.get("id"), info.num_classes)
        )

    # ================================================================ requests
    def spec(self) -> RunSpec:
        v = self.controls.values()
        if self.info is not None and self.info.num_classes <= 0:
            v["label"] = None
        return RunSpec(model=self.model_path, dataset=self.dataset_path, **v)

    def request(self, force: bool = False) -> int | None:
        """Ask the worker for the comparison the controls describe."""
        self._debounce.stop()
        try:
            spec = self.spec()
        except ValueError as e:
            self.show_error(str(e))
            return None
        if not force:
            if self._requested == spec and self.worker.busy:
                return self.rid
            if self.store.complete and self.store.spec == spec:
                return None
        self._requested = spec
        self.store.begin(spec)
        self.follow_live = True
        self.rid = self.worker.submit(spec)
        self._run_started = time.perf_counter()
        self._machine_started: float | None = None
        self.progress.setRange(0, 2 * spec.steps)
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.progress.show()
        self.cancel_btn.show()
        self.cancel_btn.setEnabled(True)
        self._set_export_enabled(False)
        self.device_label.setText(f"device: {spec.device}")
        # The previous run's timings (possibly "cached") do not describe this one.
        self.timing_label.setText("")
        self.statusBar().showMessage("computing…")
        self._refresh_frames()
        return self.rid

    def cancel(self) -> None:
        if self.worker.busy:
            self.worker.cancel()
            self.statusBar().showMessage("cancelling…")

    def _on_control(self, field: str) -> None:
        if field in VIEW_FIELDS:
            self.view_state = self.controls.view()
            self.panels.set_panels(self.view_state.panels)
            self._redraw()
            return
        if field in SPEC_FIELDS:
            self._show_restored({})
            self._debounce.start()

    # ================================================================ worker results
    def _on_model_loaded(self, rid: int, info: ModelInfo) -> None:
        if rid != self.rid:
            return
        self._apply_info(info)

    def _on_partial(self, rid: int, kind: str, i: int, total: int, traj) -> None:
        if rid != self.rid:
            return
        now = time.perf_counter()
        if kind == "cnn":
            self.store.set_cnn(traj)
            self.progress.setValue(i + 1)
            self.progress.setFormat(f"CNN {i + 1}/{total}")
            self._machine_started = now  # the machine follows the CNN's last step
        else:
            self.store.set_machine(traj)
            self.progress.setValue(total + i + 1)
            name = machines.label(self.store.spec.machine)
            since = now - (self._machine_started or self._run_started)
            self.progress.setFormat(progress_text.machine_format(name, i + 1, total, since))
        self._refresh_frames()

    def _on_done(self, rid: int, comp: Comparison, timing) -> None:
        if rid != self.rid:
            return
        self.store.set_complete(comp)
        self.good = comp
        if rid != self._note_rid:
            self.banner.hide()  # an earlier error no longer describes what is shown
        self._requested = None
        self.progress.hide()
        self.cancel_btn.hide()
        self._set_export_enabled(True)
        total = time.perf_counter() - self._run_started
        self.timing_label.setText(
            f"CNN {_fmt_s(timing.cnn_seconds, timing.cnn_cached)} · "
            f"{render.machine_name(comp)} {_fmt_s(timing.machine_seconds, timing.machine_cached)}"
        )
        self.statusBar().showMessage(
            f"done in {total:.1f} s; final correlation r = {comp.final_correlation:.3f}", 8000
        )
        self._remember(comp.spec)
        self._refresh_frames()
        self.comparison_ready.emit(comp)

    def _on_failed(self, rid: int, msg: str, spec: RunSpec, kind: str) -> None:
        if rid != self.rid:
            return
        self._requested = None
        self.progress.hide()
        self.cancel_btn.hide()
        if self.good is None and kind and self._fall_back(kind, msg):
            return
        self.show_error(msg)
        self._revert()
        self.run_failed.emit(msg)

    def _on_cancelled(self, rid: int) -> None:
        if rid != self.rid:
            return
        self._requested = None
        self.progress.hide()
        self.cancel_btn.hide()
        self.store.cancelled = True
        n = self.store.frames if self.store.comp is not None else 0
        self.statusBar().showMessage(
            f"cancelled; the machine had computed {n} of {self.store.total} steps "
            "(F5 computes the rest)",
            10000,
        )
        self._refresh_frames()

    def _fall_back(self, kind: str, msg: str) -> bool:
        """With nothing shown yet, a model or dataset that cannot be used gives way to
        the shipped one (said in the banner), rather than leaving the panels empty."""
        default = default_for(kind)
        current = self.model_path if kind == "model" else self.dataset_path
        if absolute(current) == absolute(default):
            return False
        (self.open_model if kind == "model" else self.open_dataset)(default)
        self._note(fallback_note(kind, msg))
        return True

    def _note(self, msg: str) -> None:
        """A message that stays up through the run now under way (it explains it)."""
        self.show_error(msg)
        self._note_rid = self.rid

    def _revert(self) -> None:
        """Go back to the last comparison that worked: its files and its frames."""
        good = self.good
        if good is None:
            self.store.clear()
            self._refresh_frames()
            return
        s = good.spec
        self.model_path, self.dataset_path = s.model, s.dataset
        self.controls.set_paths(s.model, s.dataset)
        info = self._peek_info(s.model)
        if info is not None:
            self._apply_info(info)
        self.controls.set_state({k: getattr(s, k) for k in SPEC_FIELDS})
        self.store.set_complete(good)
        self._set_export_enabled(True)
        self._refresh_frames()

    def _remember(self, spec: RunSpec) -> None:
        st.push_recent(self.settings, "models", spec.model)
        st.push_recent(self.settings, "datasets", spec.dataset)

    # ================================================================ frames
    def _pending(self) -> str:
        return "cancelled" if self.store.cancelled else "computing…"

    def _refresh_frames(self) -> None:
        """New frames arrived (or went): update slider range, plots and the frame."""
        n = self.store.frames
        if n == 0:
            self.step = 0
        elif self.follow_live or self.step >= n:
            self.step = n - 1
        self.timeline.set_frames(n, self.step)
        comp = self.store.comp
        if comp is not None:
            self.controls.set_provenance_available(comp.machine)
            self.plots.set_correlation(comp.cnn.t, comp.correlation)
            cal = None
            if self.info is not None and machines.machine(comp.spec.machine).has_patch_size:
                cal, _own = schedule_for(self.info, comp.spec.machine)
            self.plots.set_schedule(comp.machine.t, comp.machine.patch_size, cal)
            state = "" if self.store.complete else f"  ({self._pending()})"
            self.title.setText(render.title(comp) + state)
        else:
            self.plots.clear()
            if self.store.spec is not None:
                self.title.setText(f"{Path(self.store.spec.model).stem}: {self._pending()}")
        self._redraw()

    def _redraw(self) -> None:
        t0 = time.perf_counter()
        n = self.store.frames
        if n == 0:
            self.panels.show_frame({}, {})
            self.timeline.set_where("no frames yet")
            self.plots.set_marker(None)
            return
        step = min(self.step, n - 1)
        v = self.view_state
        self.panels.show_frame(self.store.images(step, v), self.store.captions(step, v))
        comp = self.store.comp
        t = float(self.store.cnn.t[step])
        self.plots.set_marker(t)
        where = f"step {step + 1}/{self.store.total}  t = {t:.2f}"
        if comp is not None:
            where += f"  P = {int(comp.machine.patch_size[step])}"
            self.legend.set_legend(self.store.legend(step, v.prov_mode))
            self.legend.show()
        self.diff_legend.setVisible(v.diff and comp is not None)
        if v.diff and comp is not None:
            self.diff_legend.set_legend(render.legend("difference"))
        self.timeline.set_where(where)
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()
        self.redraw_ms.append((time.perf_counter() - t0) * 1000.0)
        del self.redraw_ms[:-500]

    def _on_scrub(self, step: int) -> None:
        self.step = step
        self.follow_live = step >= self.store.frames - 1 and not self.store.complete
        self._redraw()

    def _go(self, step: int) -> None:
        if self.store.frames:
            self.timeline.slider.setValue(max(0, min(step, self.store.frames - 1)))

    def _step_by(self, d: int) -> None:
        self.timeline.step_by(d)

    def _on_marker(self, t: float) -> None:
        if self.store.cnn is None or not self.store.frames:
            return
        ts = self.store.cnn.t[: self.store.frames]
        self._go(int(np.argmin(np.abs(ts - t))))

    def _on_play(self, on: bool) -> None:
        if on:
            if self.store.frames and self.step >= self.store.frames - 1:
                self._go(0)
            self._on_fps(self.timeline.fps.value())
            self._player.start()
        else:
            self._player.stop()

    def _on_fps(self, fps: int) -> None:
        self._player.setInterval(int(1000 / max(1, fps)))

    def _tick(self) -> None:
        n = self.store.frames
        if n == 0:
            return
        if self.step >= n - 1:
            if self.timeline.loop.isChecked() and self.store.complete:
                self._go(0)
            else:
                self.timeline.play.setChecked(False)
            return
        self._go(self.step + 1)

    def _on_zoomed(self) -> None:
        self.statusBar().showMessage(
            "zoomed: the panels keep this view until View > Reset zoom (Ctrl+0) or a "
            "double click fits them again",
            6000,
        )

    # ================================================================ hover and inspect
    def _on_hover(self, panel: str, r: int, c: int) -> None:
        if r < 0 or not self.store.frames:
            self.statusBar().clearMessage()
            return
        step = min(self.step, self.store.frames - 1)
        key = "x0" if self.view_state.show == "x0" else "x_t"
        parts = [f"row {r}, col {c}:"]
        cnn = getattr(self.store.cnn, key)[step][:, r, c]
        parts.append("CNN " + " ".join(f"{x:+.3f}" for x in cnn))
        comp = self.store.comp
        if comp is not None:
            m = comp.machine
            mv = getattr(m, key)[step][:, r, c]
            parts.append(f"{render.machine_name(comp)} " + " ".join(f"{x:+.3f}" for x in mv))
            si = int(m.source_index[step, r, c])
            full = int(m.train_indices[si]) if 0 <= si < len(m.train_indices) else si
            parts.append(source_readout(m, step, r, c, full))
        self.statusBar().showMessage("   ".join(parts))

    def inspect_pixel(self, _panel: str, r: int, c: int) -> int | None:
        comp = self.store.comp
        if comp is None:
            self.statusBar().showMessage("the machine has no frame here yet", 3000)
            return None
        step = min(self.step, len(comp.machine.t) - 1)
        m = comp.machine
        si = int(m.source_index[step, r, c])
        req = InspectRequest(
            spec=comp.spec,
            step=step,
            pixel=(r, c),
            x_t=np.array(m.x_t[step]),
            t=float(m.t[step]),
            patch_size=int(m.patch_size[step]),
            source_index=si,
            source_yx=(int(m.source_yx[step, r, c, 0]), int(m.source_yx[step, r, c, 1])),
            weight=float(m.weight[step, r, c]),
        )
        full = int(m.train_indices[si]) if 0 <= si < len(m.train_indices) else si
        self._place_inspector()
        f = provenance.Frame(m, step)
        images = int(provenance.shared_images(f)[r, c])
        copies = 1 if m.shared_count is None else int(m.shared_count[step, r, c])
        note = ""
        if copies > 1:
            held = float(provenance.patch_weight(f)[r, c])
            note = (
                f"<b>{'generic' if images > 1 else 'repeated'} patch</b>: {copies} identical "
                f"copies in {images} training image{'s' if images > 1 else ''} hold weight "
                f"{held:.3f} together"
            )
        self.inspector.begin(req, float(m.entropy[step, r, c]), full, note)
        self._inspect_id = self.worker.inspect(req)
        return self._inspect_id

    def _place_inspector(self) -> None:
        """Where an opening inspector goes: beside the panels where both fit, else as a
        tab over the Run dock, so small windows keep the panels' width. Once open (or
        floated or moved by the user) it stays where it is."""
        if self.inspector.isVisible() or self.inspector.isFloating():
            return
        right = Qt.DockWidgetArea.RightDockWidgetArea
        room = self.width() - self.controls_dock.width() - self.inspector.sizeHint().width()
        if room >= MIN_PANELS_WIDTH:
            if self.dockWidgetArea(self.inspector) != right or self.tabifiedDockWidgets(
                self.inspector
            ):
                self.addDockWidget(right, self.inspector)
        elif self.controls_dock.isVisible() and not self.controls_dock.isFloating():
            self.tabifyDockWidget(self.controls_dock, self.inspector)

    def _on_inspected(self, iid: int, result) -> None:
        if iid == self._inspect_id:
            self.inspector.set_result(result)

    # ================================================================ files
    def choose_model(self) -> None:
        start = str(Path(self.model_path).parent) if self.model_path else ""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open model",
            start,
            "Models (*.safetensors *.pt *.pth *.ckpt model_index.json config.json);;All (*)",
        )
        if path:
            self.open_model(path)

    def choose_dataset(self) -> None:
        dlg = QFileDialog(self, "Open dataset (a file, or choose a folder)")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
        dlg.setDirectory(str(Path(self.dataset_path).parent))
        dlg.setNameFilters(["Datasets (*idx3* *.gz *.npz *.npy)", "All files (*)"])
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        folder_btn = QPushButton("Use this folder")
        folder_btn.clicked.connect(lambda: dlg.done(2))
        dlg.layout().addWidget(folder_btn)
        code = dlg.exec()
        if code == 2:
            self.open_dataset(dlg.directory().absolutePath())
        elif code and dlg.selectedFiles():
            self.open_dataset(dlg.selectedFiles()[0])

    def open_model(self, path: str) -> int | None:
        path = absolute(path)
        self._show_restored({})
        self.model_path = path
        self.controls.set_paths(self.model_path, self.dataset_path)
        info = self._peek_info(path)
        if info is not None:
            own = matching_dataset(info.dataset, self.dataset_path)
            if own is not None:
                self.dataset_path = str(own)
                self.controls.set_paths(self.model_path, self.dataset_path)
            self._apply_info(info)
            machine = machines.default_machine(info.padding)
            self.controls.set_state({"machine": machine, "boundary": info.padding})
        return self.request()

    def open_dataset(self, path: str) -> int | None:
        self._show_restored({})
        self.dataset_path = absolute(path)
        self.controls.set_paths(self.model_path, self.dataset_path)
        return self.request()

    def _fill_recent(self) -> None:
        m = self.recent_menu
        m.clear()
        for kind, label, opener in (
            ("models", "Models", self.open_model),
            ("datasets", "Datasets", self.open_dataset),
        ):
            sec = m.addSection(label)
            sec.setEnabled(False)
            items = st.recent(self.settings, kind)
            if not items:
                a = m.addAction("(none yet)")
                a.setEnabled(False)
            for p, label in zip(items, st.recent_labels(items), strict=True):
                a = m.addAction(label)
                a.setToolTip(p)
                a.setStatusTip(p)
                a.triggered.connect(lambda _c=False, p=p, f=opener: f(p))

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()

    def dropEvent(self, e: QDropEvent) -> None:  # noqa: N802 (Qt API)
        for url in e.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                e.acceptProposedAction()
                return

    def open_path(self, path: str) -> int | None:
        """A dropped file or folder: a model (loaders.is_model_path) opens as the model,
        anything else as data."""
        if loaders.is_model_path(path):
            return self.open_model(path)
        return self.open_dataset(path)

    # ================================================================ export, about
    def _set_export_enabled(self, on: bool) -> None:
        self.act_export_frames.setEnabled(on)
        self.act_export_video.setEnabled(on)

    def export(self, kind: str) -> None:
        if not self.store.complete or self.store.comp is None:
            self.statusBar().showMessage("export needs a complete comparison", 4000)
            return
        try:
            from .export_dialog import ExportDialog
        except ImportError as e:
            self.show_error(f"Export is not available in this build ({e}).")
            return
        dlg = ExportDialog(self, self.store.comp, self.view_state, kind)
        dlg.exec()

    def export_grid(self) -> None:
        """Many seeds of the current settings, one class or all, CNN above machine."""
        try:
            spec = self.spec()
        except ValueError as e:
            self.show_error(str(e))
            return
        from .grid_dialog import GridDialog

        info = self.info
        names = []
        if info is not None and info.num_classes > 0:
            names = class_names(info.dataset.get("id"), info.num_classes)
        self.grid_dialog = GridDialog(self, spec, names)
        self.grid_dialog.show()

    def about(self) -> None:
        import numpy
        import pyqtgraph
        import PySide6
        import torch

        dev = self.store.spec.device if self.store.spec else self.controls.values()["device"]
        QMessageBox.about(
            self,
            "About ccdm-gui",
            f"<h3>ccdm-gui {__version__}</h3>"
            "<p>CNN diffusion samples beside the equivariant local score machine, with "
            "patch provenance (Kamb &amp; Ganguli, ICML 2025).</p>"
            f"<p>torch {torch.__version__}<br>Qt {PySide6.QtCore.qVersion()} "
            f"(PySide6 {PySide6.__version__})<br>pyqtgraph {pyqtgraph.__version__}<br>"
            f"numpy {numpy.__version__}<br>Python {platform.python_version()}<br>"
            f"device: {dev} (available: {', '.join(available_devices())})</p>",
        )

    # ================================================================ errors, closing
    def show_error(self, msg: str) -> None:
        self.last_error = msg
        self.banner.show_message(msg)
        self.statusBar().showMessage(msg.splitlines()[0] if msg else "", 15000)

    def closeEvent(self, e) -> None:  # noqa: N802 (Qt API)
        self._player.stop()
        self._debounce.stop()
        try:
            if not self._no_save:
                self._save()
        except Exception as err:  # settings are a convenience, never a reason to hang
            print(f"ccdm-gui: could not save settings: {err}", file=sys.stderr)
        self.hide()
        # A machine step is not interruptible inside; the thread leaves at the next
        # step boundary, so wait for it rather than destroy a running QThread.
        self.worker.stop()
        super().closeEvent(e)
