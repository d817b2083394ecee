"""A dialog that runs one long job (an export, a seed grid) on a QThread, with a
progress bar, a message line and Cancel; the export and seed-grid dialogs derive from it.

The job itself is a plain function ``work(report, should_cancel) -> message`` built on
the GUI thread from the dialog's settings, so the worker thread never reads a widget.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from ..core.atomic import WriteCancelled, WriteError
from ..core.sampler import Cancelled

log = logging.getLogger(__name__)

Work = Callable[[Callable[[int, int], None], Callable[[], bool]], str]


class _Job(QObject):
    """Runs ``work`` on the worker thread. Progress crosses to the GUI thread through
    queued signals; cancellation is a threading.Event the work polls."""

    progress = Signal(int, int)
    done = Signal(bool, str)

    def __init__(self, work: Work, name: str, user_errors: tuple[type[Exception], ...]):
        super().__init__()
        self.work, self.name, self.user_errors = work, name, user_errors
        self.cancel_event = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            message = self.work(self.progress.emit, self.cancel_event.is_set)
        except (Cancelled, WriteCancelled):
            self.done.emit(False, f"{self.name} cancelled; nothing was written.")
        except self.user_errors as e:
            self.done.emit(False, str(e))
        except Exception as e:  # a bug, not a user error: say so briefly, log the details
            log.exception("%s failed", self.name.lower())
            self.done.emit(False, f"{self.name} failed unexpectedly: {type(e).__name__}: {e}")
        else:
            self.done.emit(True, message)


class JobDialog(QDialog):
    """The running half of a job dialog. A subclass builds its settings form, calls
    ``_lay_out`` and lists its setting widgets in ``_inputs`` (disabled while a job
    runs), and starts a job with ``_start_job``. ``job_finished(ok, message)`` is
    emitted when a job ends, also after cancel and errors; closing the dialog while
    a job runs cancels it and closes once the worker has cleaned up."""

    job_finished = Signal(bool, str)
    job_name = "Job"  # "Export": in the messages and the cancel button
    # What a job raises for the user's input or files: shown as the message alone.
    user_errors: tuple[type[Exception], ...] = (WriteError,)

    def __init__(
        self,
        parent: QWidget | None,
        title: str,
        dismiss: QDialogButtonBox.StandardButton = QDialogButtonBox.StandardButton.Close,
    ):
        super().__init__(parent)
        self.setWindowTitle(title)
        self._thread: QThread | None = None
        self._job: _Job | None = None
        self._close_when_done = False
        self._inputs: list[QWidget] = []
        self.last_result: tuple[bool, str] | None = None

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(dismiss)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.close_button.clicked.connect(self._on_close_clicked)

    def _lay_out(self, summary: QWidget, form: QFormLayout) -> None:
        outer = QVBoxLayout(self)
        outer.addWidget(summary)
        outer.addLayout(form)
        outer.addWidget(self.progress)
        outer.addWidget(self.message)
        outer.addWidget(self.buttons)

    def _on_start_clicked(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _start_job(self, work: Work, message: str) -> None:
        self.last_result = None
        job = _Job(work, self.job_name, self.user_errors)
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
        self._show(None, message)
        thread.start()

    def cancel(self) -> None:
        """Ask the running job to stop; it does at its next check."""
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
        ok, message = self.last_result or (False, f"{self.job_name} stopped.")
        self.job_finished.emit(ok, message)
        if self._close_when_done:
            super().reject()

    def _set_running(self, on: bool) -> None:
        for w in self._inputs:
            w.setEnabled(not on)
        self.start_button.setEnabled(not on)
        self.close_button.setText(f"Cancel {self.job_name.lower()}" if on else "Close")

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
        # Escape or the window's close button during a job: cancel, and close once the
        # worker has cleaned up (it stops at its next check).
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
        """Block until the running job's thread ends (for shutdown paths)."""
        thread = self._thread
        return True if thread is None else thread.wait(ms)
