"""File > Export seed grid: the window's run settings over many seeds, for one class or
all, CNN above machine, as a PNG and a video (what ``ccdm grid`` writes).

Sampling and writing run on a QThread with a progress bar and Cancel; the outputs are
checked before any sampling starts, and a cancelled or failed grid writes nothing.
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
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.grid import parse_seeds, seed_grid
from ..core.sampler import Cancelled
from ..core.spec import RunSpec
from ..export import WriteCancelled, WriteError
from ..export.seedgrid import check_outputs, export_seed_grid

log = logging.getLogger(__name__)

ALL = -1  # the class combo's value for "all classes"


class _GridJob(QObject):
    progress = Signal(int, int)
    done = Signal(bool, str)

    def __init__(self, spec: RunSpec, labels, seeds, png, video, scale, overwrite):
        super().__init__()
        self.args = (spec, labels, seeds, png, video, scale, overwrite)
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        spec, labels, seeds, png, video, scale, overwrite = self.args
        cancel = self.cancel_event.is_set
        try:
            g = seed_grid(
                spec.model,
                spec.dataset,
                labels,
                seeds,
                steps=spec.steps,
                subset=spec.subset,
                machine=spec.machine,
                boundary=spec.boundary,
                patch_size=spec.patch_size,
                device=spec.device,
                on_progress=lambda i, n: self.progress.emit(900 * i // n, 1000),
                should_cancel=cancel,
            )
            written = export_seed_grid(
                g,
                png,
                video,
                scale=scale,
                overwrite=overwrite,
                on_progress=lambda i, n: self.progress.emit(900 + 100 * i // n, 1000),
                should_cancel=cancel,
            )
        except (Cancelled, WriteCancelled):
            self.done.emit(False, "Cancelled; nothing was written.")
        except (WriteError, ValueError, OSError) as e:
            self.done.emit(False, str(e))
        except Exception as e:  # a bug, not a user error: say so briefly, log the details
            log.exception("seed grid failed")
            self.done.emit(False, f"Seed grid failed unexpectedly: {type(e).__name__}: {e}")
        else:
            self.done.emit(True, "Wrote " + " and ".join(str(p) for p in written))


class GridDialog(QDialog):
    """``GridDialog(parent, spec, class_names)``: the window's current run ``spec`` gives
    the model, data, machine, P and steps; ``class_names`` the model's classes (empty
    for an unconditional model). ``start(png, video, overwrite)`` starts without the
    buttons; ``finished_grid(ok, message)`` is emitted when it ends."""

    finished_grid = Signal(bool, str)

    def __init__(self, parent: QWidget | None, spec: RunSpec, class_names: list[str]):
        super().__init__(parent)
        self.setWindowTitle("Export seed grid")
        self.spec, self.names = spec, list(class_names)
        self._thread: QThread | None = None
        self._job: _GridJob | None = None
        self.last_result: tuple[bool, str] | None = None

        form = QFormLayout()
        self.class_combo = QComboBox()
        if self.names:
            self.class_combo.addItem("All classes", ALL)
            for k, name in enumerate(self.names):
                self.class_combo.addItem(name if name == str(k) else f"{k} · {name}", k)
            self.class_combo.setCurrentIndex(max(0, self.class_combo.findData(spec.label)))
        else:
            self.class_combo.addItem("— (unconditional model)", None)
            self.class_combo.setEnabled(False)
        form.addRow("Class:", self.class_combo)
        self.seeds_edit = QLineEdit(f"{spec.seed}-{spec.seed + 7}")
        self.seeds_edit.setToolTip("e.g. 0-15 or 0,3,7: one column per seed")
        form.addRow("Seeds:", self.seeds_edit)
        stem = Path.home() / f"ccdm-grid-{Path(spec.model).stem}"
        self.png_edit = QLineEdit(f"{stem}.png")
        self.video_edit = QLineEdit(f"{stem}.mp4")
        self.video_edit.setToolTip(".mp4, .gif or .webm; leave empty for no video")
        for edit in (self.png_edit, self.video_edit):
            edit.setMinimumWidth(360)
        form.addRow("Picture (PNG):", self.png_edit)
        form.addRow("Video:", self.video_edit)
        self.scale_spin = QSpinBox()
        self.scale_spin.setRange(1, 16)
        self.scale_spin.setValue(3)
        self.scale_spin.setSuffix(" ×")
        form.addRow("Scale:", self.scale_spin)
        self.overwrite_check = QCheckBox("Replace existing files")
        form.addRow("", self.overwrite_check)
        what = QLabel(
            f"{spec.machine} · N = {spec.subset or 'all'} (of each class) · {spec.steps} steps · "
            "each class: the CNN's samples above the machine's"
        )
        what.setWordWrap(True)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.close_button.clicked.connect(self._on_close_clicked)

        outer = QVBoxLayout(self)
        outer.addWidget(what)
        outer.addLayout(form)
        outer.addWidget(self.progress)
        outer.addWidget(self.message)
        outer.addWidget(self.buttons)
        self._inputs = [
            self.class_combo,
            self.seeds_edit,
            self.png_edit,
            self.video_edit,
            self.scale_spin,
            self.overwrite_check,
        ]

    @property
    def running(self) -> bool:
        return self._thread is not None

    def labels(self) -> list[int | None]:
        v = self.class_combo.currentData()
        if v == ALL:
            return list(range(len(self.names)))
        return [v]

    def _on_start_clicked(self) -> None:
        png = self.png_edit.text().strip() or None
        video = self.video_edit.text().strip() or None
        self.start(png, video, self.overwrite_check.isChecked())

    def start(self, png: str | None, video: str | None, overwrite: bool = False) -> bool:
        """Validate, then compute and write on a worker thread; False if not started."""
        if self.running:
            return False
        try:
            seeds = parse_seeds(self.seeds_edit.text())
            check_outputs(png, video, overwrite)
        except (ValueError, WriteError) as e:
            self._show(False, str(e))
            return False
        self.last_result = None
        job = _GridJob(
            self.spec, self.labels(), seeds, png, video, self.scale_spin.value(), overwrite
        )
        thread = QThread(self)
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_done)
        job.done.connect(thread.quit)
        thread.finished.connect(self._on_thread_finished)
        self._job, self._thread = job, thread
        for w in self._inputs:
            w.setEnabled(False)
        self.start_button.setEnabled(False)
        self.close_button.setText("Cancel")
        n = len(self.labels()) * len(seeds)
        self._show(None, f"Sampling {n} CNN and machine pairs …")
        thread.start()
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel_event.set()
            self._show(None, "Cancelling…")

    @Slot(int, int)
    def _on_progress(self, i: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(i)

    @Slot(bool, str)
    def _on_done(self, ok: bool, message: str) -> None:
        self.last_result = (ok, message)
        self._show(ok, message)

    @Slot()
    def _on_thread_finished(self) -> None:
        # As in the export dialog: wait for the thread to end before dropping the job.
        thread, job = self._thread, self._job
        if thread is not None:
            thread.wait()
        self._thread, self._job = None, None
        del job
        if thread is not None:
            thread.deleteLater()
        for w in self._inputs:
            w.setEnabled(bool(self.names) or w is not self.class_combo)
        self.start_button.setEnabled(True)
        self.close_button.setText("Close")
        ok, message = self.last_result or (False, "Stopped.")
        self.finished_grid.emit(ok, message)

    def _show(self, ok: bool | None, text: str) -> None:
        colour = {True: "#2e7d32", False: "#c62828", None: ""}[ok]
        self.message.setStyleSheet(f"color: {colour};" if colour else "")
        self.message.setText(text)

    def _on_close_clicked(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def reject(self) -> None:
        if self.running:
            self.cancel()
            return
        super().reject()

    def closeEvent(self, e) -> None:  # noqa: N802 (Qt API)
        if self.running:
            self.cancel()
            e.ignore()
            return
        super().closeEvent(e)

    def wait(self, ms: int = 30000) -> bool:
        thread = self._thread
        return True if thread is None else thread.wait(ms)
