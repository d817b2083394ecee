"""File > Export frames / Export video: choose settings, then export off the GUI thread.

The export itself is ccdm_gui.export (no Qt); this dialog only gathers its arguments,
runs it on a QThread with a progress bar and Cancel, and shows any error as a message.
A cancelled or failed export leaves nothing on disk (export's atomic writes).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import export
from ..core import provenance, render
from ..core.spec import Comparison
from ..core.view import DEFAULT_VIEW, View

log = logging.getLogger(__name__)


class _ExportJob(QObject):
    """Runs one export on the worker thread. Progress crosses to the GUI thread through
    queued signals; cancellation is a threading.Event the export polls between frames."""

    progress = Signal(int, int)
    done = Signal(bool, str)

    def __init__(self, kind: str, comp: Comparison, path: Path, options: dict):
        super().__init__()
        self.kind, self.comp, self.path, self.options = kind, comp, path, options
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        common = dict(
            on_progress=lambda i, n: self.progress.emit(i, n),
            should_cancel=self.cancel_event.is_set,
        )
        try:
            if self.kind == "frames":
                paths = export.export_frames(self.comp, self.path, **self.options, **common)
                msg = f"Wrote {len(paths)} frames to {self.path}"
            else:
                out = export.export_video(self.comp, self.path, **self.options, **common)
                msg = f"Wrote {out}"
        except export.WriteCancelled:
            self.done.emit(False, "Export cancelled; nothing was written.")
        except export.WriteError as e:
            self.done.emit(False, str(e))
        except Exception as e:  # a bug, not a user error: say so briefly, log the details
            log.exception("export failed")
            self.done.emit(False, f"Export failed unexpectedly: {type(e).__name__}: {e}")
        else:
            self.done.emit(True, msg)


class ExportDialog(QDialog):
    """``ExportDialog(parent, comparison, view, kind)`` with ``view`` the window's View
    (the starting choice) and ``kind`` "frames" or "video".

    ``start_export(path, overwrite=False)`` starts without the file chooser or the
    overwrite question (for tests and scripted use); ``export_finished(ok, message)``
    is emitted when the export ends (also after cancel and errors). ``cancel()``
    requests cancellation.
    """

    export_finished = Signal(bool, str)

    def __init__(
        self,
        parent: QWidget | None,
        comparison: Comparison,
        view: View = DEFAULT_VIEW,
        kind: str = "video",
    ):
        super().__init__(parent)
        if kind not in ("frames", "video"):
            raise ValueError(f"kind must be 'frames' or 'video', got {kind!r}")
        self.comp, self.kind = comparison, kind
        self.setWindowTitle("Export frames" if kind == "frames" else "Export video")
        self._thread: QThread | None = None
        self._job: _ExportJob | None = None
        self._close_when_done = False
        self.last_result: tuple[bool, str] | None = None

        form = QFormLayout()
        self.path_edit = QLineEdit(str(self._default_path()))
        self.path_edit.setMinimumWidth(360)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("Folder:" if kind == "frames" else "File:", row)

        self.format_combo = QComboBox()
        if kind == "video":
            available = export.available_formats()
            for name, fmt in export.FORMATS.items():
                self.format_combo.addItem(fmt.label, name)
                if name not in available:
                    # Visible but disabled, so a user can see why WebM is missing.
                    item = self.format_combo.model().item(self.format_combo.count() - 1)
                    item.setEnabled(False)
                    item.setToolTip("this installation's FFmpeg has no encoder for it")
            self.format_combo.currentIndexChanged.connect(self._format_changed)
            form.addRow("Format:", self.format_combo)

        layouts = [
            (lay.name, lay.label) for lay in export.LAYOUT_TABLE if kind == "frames" or lay.video
        ]
        self.layout_combo = _combo(layouts, "composite")
        form.addRow("Layout:", self.layout_combo)
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(1, 32)
        self.scale_spin.setValue(8)
        self.scale_spin.setSuffix(" ×")
        self.scale_spin.setToolTip("each image pixel becomes a scale × scale block")
        form.addRow("Scale:", self.scale_spin)
        self.show_combo = _combo(
            [("x0", "Predicted clean image (x0)"), ("xt", "Noisy image (x_t)")],
            view.show,
        )
        form.addRow("Show:", self.show_combo)
        modes = [m for m in provenance.MODES if m.available(comparison.machine)]
        self.prov_combo = _combo([(m.key, m.label) for m in modes], view.prov_mode)
        form.addRow("Provenance:", self.prov_combo)
        self.diff_check = QCheckBox("Add the CNN − machine difference panel")
        self.diff_check.setChecked(view.diff)
        form.addRow("", self.diff_check)
        self.size_label = QLabel()
        form.addRow("Frame size:", self.size_label)
        for signal in (
            self.scale_spin.valueChanged,
            self.diff_check.toggled,
            self.layout_combo.currentIndexChanged,
        ):
            signal.connect(self._update_size)
        self._update_size()

        self.fps_spin = QDoubleSpinBox()
        self.fps_spin.setRange(0.5, 60.0)
        self.fps_spin.setDecimals(1)
        self.fps_spin.setValue(4.0)
        self.hold_spin = QDoubleSpinBox()
        self.hold_spin.setRange(0.0, 30.0)
        self.hold_spin.setDecimals(1)
        self.hold_spin.setSuffix(" s")
        self.hold_spin.setValue(1.0)
        self.quality_spin = QSpinBox()
        self.quality_spin.setToolTip("CRF: lower is better and larger; 18 is near lossless")
        if kind == "video":
            form.addRow("Frames per second:", self.fps_spin)
            form.addRow("Hold last frame:", self.hold_spin)
            form.addRow("Quality (CRF):", self.quality_spin)
            self._format_changed()

        self.progress = QProgressBar()
        self.progress.setRange(0, max(len(comparison.cnn.t), 1))
        self.progress.setValue(0)
        self.progress.setFormat("%v / %m")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)

        outer = QVBoxLayout(self)
        summary = QLabel(render.title(comparison) + f" · {len(comparison.cnn.t)} steps")
        summary.setWordWrap(True)
        outer.addWidget(summary)
        outer.addLayout(form)
        outer.addWidget(self.progress)
        outer.addWidget(self.message)
        outer.addWidget(self.buttons)
        self._settings_widgets = [
            self.path_edit,
            browse,
            self.format_combo,
            self.layout_combo,
            self.scale_spin,
            self.show_combo,
            self.prov_combo,
            self.diff_check,
            self.fps_spin,
            self.hold_spin,
            self.quality_spin,
        ]

    # ------------------------------------------------------------------ settings
    def _default_path(self) -> Path:
        s = self.comp.spec
        stem = f"ccdm-{Path(s.model).stem}-{s.machine}-seed{s.seed}"
        base = Path.home()
        return base / (f"{stem}-frames" if self.kind == "frames" else f"{stem}.mp4")

    def _update_size(self) -> None:
        # Geometry only, no rendering: cheap enough to follow every spin-box change.
        c = export.Composer(
            self.comp, View(diff=self.diff_check.isChecked()), self.scale_spin.value()
        )
        layout = self.layout_combo.currentData()
        g = c.geometry
        if layout == "composite":
            text = f"{g.width} × {g.height} pixels"
        elif layout == "strip":
            w = g.n_panels * g.panel_w + (g.n_panels - 1) * g.gap
            text = f"{w + w % 2} × {g.panel_h + g.panel_h % 2} pixels"
        else:
            text = f"{g.panel_w} × {g.panel_h} pixels per panel"
        self.size_label.setText(text)

    def format(self) -> str:
        return self.format_combo.currentData() or "mp4"

    def _format_changed(self) -> None:
        fmt = self.format()
        spec = export.FORMATS[fmt]
        if spec.quality_range is None:
            self.quality_spin.setEnabled(False)
        else:
            self.quality_spin.setEnabled(True)
            self.quality_spin.setRange(*spec.quality_range)
            self.quality_spin.setValue(spec.default_quality)
        # Keep the file name in step with the chosen format.
        p = Path(self.path_edit.text().strip() or self._default_path())
        if p.suffix.lower() != f".{fmt}":
            self.path_edit.setText(str(p.with_suffix(f".{fmt}")))

    def view(self) -> View:
        return View(
            show=self.show_combo.currentData(),
            prov_mode=self.prov_combo.currentData(),
            diff=self.diff_check.isChecked(),
        )

    def options(self) -> dict:
        """The keyword arguments the export function will get (besides path/progress)."""
        opts = dict(
            view=self.view(),
            layout=self.layout_combo.currentData(),
            scale=self.scale_spin.value(),
        )
        if self.kind == "video":
            fmt = self.format()
            opts.update(
                fmt=fmt,
                fps=self.fps_spin.value(),
                hold_last=self.hold_spin.value(),
                quality=self.quality_spin.value() if export.FORMATS[fmt].quality_range else None,
            )
        return opts

    def _browse(self) -> None:
        current = self.path_edit.text().strip()
        if self.kind == "frames":
            chosen = QFileDialog.getExistingDirectory(self, "Export frames to folder", current)
        else:
            fmt = self.format()
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Export video", current, f"{fmt.upper()} video (*.{fmt})"
            )
            if chosen and not chosen.lower().endswith(f".{fmt}"):
                chosen += f".{fmt}"
        if chosen:
            self.path_edit.setText(chosen)

    def _would_overwrite(self, path: Path) -> bool:
        if self.kind == "video":
            return path.exists()
        if not path.is_dir():
            return False
        steps = len(self.comp.cnn.t)
        panels = self.view().panels
        names = export.frame_names(steps, self.layout_combo.currentData(), panels)
        return (
            any((path / n).exists() for step in names for n in step)
            or (path / export.SIDECAR).exists()
        )

    def _confirm_overwrite(self, path: Path) -> bool:
        what = f"the frames in {path}" if self.kind == "frames" else str(path)
        answer = QMessageBox.question(
            self,
            "Replace existing files?",
            f"Replace {what}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------------ running
    def _on_export_clicked(self) -> None:
        if self.running:
            return
        text = self.path_edit.text().strip()
        if not text:
            self._show_message(False, "Choose where to export to.")
            return
        path = Path(text).expanduser()
        overwrite = False
        if self._would_overwrite(path):
            if not self._confirm_overwrite(path):
                return
            overwrite = True
        self.start_export(path, overwrite=overwrite)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start_export(self, path: str | Path, overwrite: bool = False) -> bool:
        """Start exporting to ``path`` with the dialog's current settings. Returns False
        (and does nothing) if an export is already running."""
        if self.running:
            return False
        path = Path(path)
        self.path_edit.setText(str(path))
        self.last_result = None
        options = self.options()
        options["overwrite"] = overwrite
        job = _ExportJob(self.kind, self.comp, path, options)
        thread = QThread(self)
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_done)
        job.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._job, self._thread = job, thread
        self._set_running(True)
        self.progress.setValue(0)
        self._show_message(None, f"Exporting to {path} …")
        thread.start()
        return True

    def cancel(self) -> None:
        """Ask the running export to stop; it does at the next frame."""
        if self._job is not None:
            self._job.cancel_event.set()
            self._show_message(None, "Cancelling…")

    @Slot(int, int)
    def _on_progress(self, i: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(i)

    @Slot(bool, str)
    def _on_done(self, ok: bool, message: str) -> None:
        self.last_result = (ok, message)
        self._show_message(ok, message)
        if not ok:
            self.progress.setValue(0)

    @Slot()
    def _on_thread_finished(self) -> None:
        # QThread.finished is emitted from inside the ending thread; wait() returns once
        # it has really stopped. Only then drop the job, which Python owns: deleting it
        # while its thread still runs (or letting both Qt's deferred delete and Python's
        # refcount delete it) aborts the process.
        thread, job = self._thread, self._job
        if thread is not None:
            thread.wait()
        self._thread, self._job = None, None
        del job
        if thread is not None:
            thread.deleteLater()
        self._set_running(False)
        ok, message = self.last_result or (False, "Export stopped.")
        if ok:
            self.export_button.setText("Export again")
        self.export_finished.emit(ok, message)
        if self._close_when_done:
            super().reject()

    def _set_running(self, on: bool) -> None:
        for w in self._settings_widgets:
            w.setEnabled(not on)
        if not on and self.kind == "video":
            self._format_changed_enable_only()
        self.export_button.setEnabled(not on)
        self.cancel_button.setText("Cancel export" if on else "Close")

    def _format_changed_enable_only(self) -> None:
        self.quality_spin.setEnabled(export.FORMATS[self.format()].quality_range is not None)

    def _show_message(self, ok: bool | None, text: str) -> None:
        colour = {True: "#2e7d32", False: "#c62828", None: ""}[ok]
        self.message.setStyleSheet(f"color: {colour};" if colour else "")
        self.message.setText(text)

    def _on_cancel_clicked(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        # Escape or the window's close button during an export: cancel, and close once
        # the worker has cleaned up (it stops within a frame).
        if self.running:
            self._close_when_done = True
            self.cancel()
            return
        super().reject()

    def closeEvent(self, e) -> None:  # noqa: N802 (Qt API)
        if self.running:
            self._close_when_done = True
            self.cancel()
            e.ignore()
            return
        super().closeEvent(e)

    def wait(self, ms: int = 30000) -> bool:
        """Block until the running export's thread ends (for shutdown paths)."""
        thread = self._thread
        return True if thread is None else thread.wait(ms)


def _combo(items: list[tuple[str, str]], current: str) -> QComboBox:
    c = QComboBox()
    for value, label in items:
        c.addItem(label, value)
    i = c.findData(current)
    c.setCurrentIndex(max(i, 0))
    return c
