"""The one compute thread.

The GUI submits a comparison request (a RunSpec) and gets an id back. Only the newest
request is wanted: submitting another one makes the running one's ``should_cancel``
true, so it stops at the machine's next pause (core/cancel.py) and its results are
never shown. Frames cross to the GUI thread as the numpy copies that the pipeline
makes, through queued signals.

Pixel inspections (the top candidates of one pixel) run on the same thread, at those
pauses of a running comparison, so the inspector answers while a long run goes on
without a second thread competing for the CPU.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, Signal

from ..core import cancel, pipeline
from ..core.checkpoint import CheckpointError
from ..core.datasets import DatasetError
from ..core.devices import out_of_memory
from ..core.sampler import Cancelled
from ..core.spec import RunSpec


@dataclass
class InspectRequest:
    spec: RunSpec
    step: int
    pixel: tuple[int, int]  # (row, col)
    x_t: np.ndarray  # [C, H, W] the machine's noisy image at that step
    t: float
    patch_size: int
    source_index: int  # winning candidate: position in the training subset
    source_yx: tuple[int, int]
    weight: float
    k: int = 8


@dataclass
class Candidate:
    subset_index: int
    dataset_index: int
    yx: tuple[int, int]
    weight: float
    image: np.ndarray  # [C, H, W]


@dataclass
class InspectResult:
    request: InspectRequest
    source_image: np.ndarray  # [C, H, W] the winning training image
    dataset_index: int
    candidates: list[Candidate] = field(default_factory=list)
    error: str = ""


def user_message(e: BaseException) -> str:
    """One readable sentence for the window; never a traceback."""
    memory = out_of_memory(e)
    if memory == "gpu":
        return "The GPU ran out of memory. Try a smaller training subset, or the CPU device."
    if memory == "cpu":
        return "Out of memory. Try a smaller training subset."
    if isinstance(e, CheckpointError):
        return f"Cannot use this model: {e}"
    if isinstance(e, DatasetError):
        return f"Cannot use this dataset: {e}"
    if isinstance(e, (ValueError, FileNotFoundError)):
        return str(e)
    return f"Unexpected error ({type(e).__name__}): {e}"


def failure_kind(e: BaseException) -> str:
    """Which file a failed run could not use ("model", "dataset"), or "" for the rest."""
    if isinstance(e, CheckpointError):
        return "model"
    if isinstance(e, DatasetError):
        return "dataset"
    return ""


def _log(e: BaseException) -> None:
    """One line on stderr for whoever started the app from a terminal; the full
    traceback only when asked for (CCDM_GUI_DEBUG=1)."""
    if os.environ.get("CCDM_GUI_DEBUG"):
        traceback.print_exception(e)
    else:
        print(f"ccdm-gui: {type(e).__name__}: {e}", file=sys.stderr)


class Worker(QThread):
    # rid, ModelInfo: sent before any frame, so the controls can follow the model.
    model_loaded = Signal(int, object)
    # rid, "cnn" | "machine", step index, total steps, partial trajectory
    partial = Signal(int, str, int, int, object)
    # rid, Comparison, pipeline.Timing
    done = Signal(int, object, object)
    # rid, message, spec, failure_kind
    failed = Signal(int, str, object, str)
    cancelled = Signal(int)
    inspected = Signal(int, object)  # inspection id, InspectResult

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.cache = pipeline.TrajectoryCache()
        self._cond = threading.Condition()
        self._latest = 0
        self._pending: tuple[int, RunSpec] | None = None
        self._inspect: tuple[int, InspectRequest] | None = None
        self._inspect_id = 0
        self._stopping = False
        self._busy = False
        # What actually ran (not cache hits); tests and the status bar read these.
        self.cnn_runs = 0
        self.machine_runs = 0
        self.requests = 0

    # ----------------------------------------------------------- GUI thread side
    def submit(self, spec: RunSpec) -> int:
        with self._cond:
            self._latest += 1
            self.requests += 1
            self._pending = (self._latest, spec)
            self._cond.notify_all()
            return self._latest

    def cancel(self) -> int:
        """Cancel whatever runs or waits; returns the id that was cancelled."""
        with self._cond:
            was = self._latest
            self._latest += 1
            self._pending = None
            self._cond.notify_all()
            return was

    def inspect(self, req: InspectRequest) -> int:
        with self._cond:
            self._inspect_id += 1
            self._inspect = (self._inspect_id, req)
            self._cond.notify_all()
            return self._inspect_id

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None

    def stop(self, timeout_ms: int | None = None) -> bool:
        """Cancel, let the thread leave at its next cancellation point, and join it."""
        with self._cond:
            self._stopping = True
            self._latest += 1
            self._pending = None
            self._inspect = None
            self._cond.notify_all()
        return self.wait() if timeout_ms is None else self.wait(timeout_ms)

    # ----------------------------------------------------------- worker thread side
    def run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._cond:
                while not self._stopping and self._pending is None and self._inspect is None:
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._pending = self._pending, None
                self._busy = job is not None
            self._serve_inspection()
            if job is not None:
                try:
                    self._compare(*job)
                finally:
                    self._busy = False

    def _cancelled(self, rid: int) -> bool:
        return self._stopping or self._latest != rid

    def _compare(self, rid: int, spec: RunSpec) -> None:
        timing = pipeline.Timing()

        def should_cancel() -> bool:
            # Asked between steps and at the machine's pauses inside one (core/cancel.py,
            # a second or less apart): a pixel inspected meanwhile is answered here, not
            # after a step that takes half a minute on the whole training set.
            self._serve_inspection()
            return self._cancelled(rid)

        def on_step(part: str, i: int, total: int, partial) -> None:
            if not self._cancelled(rid):
                self.partial.emit(rid, part, i, total, partial)
            self._serve_inspection()

        try:
            model = pipeline.load_model(spec.model, spec.device)
            if self._cancelled(rid):
                raise Cancelled()
            self.model_loaded.emit(rid, model.info)
            try:
                comp = pipeline.run_comparison(spec, self.cache, on_step, should_cancel, timing)
            finally:
                # A part counts as run once it started, finished or not; counted before
                # any signal goes out, so whoever receives it sees the count.
                self.cnn_runs += timing.cnn_cached is False
                self.machine_runs += timing.machine_cached is False
            if self._cancelled(rid):
                raise Cancelled()
            self.done.emit(rid, comp, timing)
        except Cancelled:
            self.cancelled.emit(rid)
        except Exception as e:  # the window must survive any failure of a run
            _log(e)
            self.failed.emit(rid, user_message(e), spec, failure_kind(e))
        finally:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _serve_inspection(self) -> None:
        with self._cond:
            job, self._inspect = self._inspect, None
        if job is None or self._stopping:
            return
        iid, req = job
        try:
            # Served at a comparison's pause: that comparison's cancel is not this one's.
            with cancel.checking(None):
                result = self._inspect_one(req)
        except Exception as e:
            _log(e)
            result = InspectResult(req, np.zeros_like(req.x_t), -1, [], user_message(e))
        self.inspected.emit(iid, result)

    def _inspect_one(self, req: InspectRequest) -> InspectResult:
        from ..core.machines import top_candidates

        spec = req.spec
        model = pipeline.load_model(spec.model, spec.device)
        info = model.info
        ts = pipeline.load_training_images(spec, info)
        train = ts.images
        x = torch.from_numpy(np.ascontiguousarray(req.x_t)).to(train.device)
        found = top_candidates(
            x,
            model.schedule.abar(req.t),
            train,
            spec.machine,
            int(req.patch_size),
            spec.boundary,
            pixel=tuple(req.pixel),
            k=req.k,
        )
        cands = [
            Candidate(
                subset_index=int(i),
                dataset_index=int(ts.indices[int(i)]),
                yx=(int(yx[0]), int(yx[1])),
                weight=float(w),
                image=train[int(i)].detach().cpu().numpy().copy(),
            )
            for i, yx, w in found
        ]
        si = int(req.source_index)
        return InspectResult(
            request=req,
            source_image=train[si].detach().cpu().numpy().copy(),
            dataset_index=int(ts.indices[si]),
            candidates=cands,
        )
