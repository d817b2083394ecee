"""File > Export seed grid: the window's run settings over many seeds, for one class or
all, CNN above machine, as a PNG and a video (what ``ccdm grid`` writes).

Sampling and writing run on a QThread with a progress bar and Cancel (JobDialog); the
outputs are checked before any sampling starts, and a cancelled or failed grid writes
nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ..core.grid import parse_seeds, seed_grid
from ..core.spec import RunSpec
from ..export import WriteError
from ..export.seedgrid import check_outputs, export_seed_grid
from .job_dialog import JobDialog

ALL = -1  # the class combo's value for "all classes"


class GridDialog(JobDialog):
    """``GridDialog(parent, spec, class_names)``: the window's current run ``spec`` gives
    the model, data, machine, P and steps; ``class_names`` the model's classes (empty
    for an unconditional model). ``start(png, video, overwrite)`` starts without the
    buttons; ``job_finished(ok, message)`` is emitted when it ends."""

    job_name = "Seed grid"
    # Bad seeds, a model or data set that does not load: the user's to fix.
    user_errors = (WriteError, ValueError, OSError)

    def __init__(self, parent: QWidget | None, spec: RunSpec, class_names: list[str]):
        super().__init__(parent, "Export seed grid")
        self.spec, self.names = spec, list(class_names)

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
        self._lay_out(what, form)
        # An unconditional model's class combo stays disabled.
        self._inputs = [self.class_combo] if self.names else []
        self._inputs += [
            self.seeds_edit,
            self.png_edit,
            self.video_edit,
            self.scale_spin,
            self.overwrite_check,
        ]

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
        spec, labels, scale = self.spec, self.labels(), self.scale_spin.value()

        def work(report, should_cancel) -> str:
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
                on_progress=lambda i, n: report(900 * i // n, 1000),
                should_cancel=should_cancel,
            )
            written = export_seed_grid(
                g,
                png,
                video,
                scale=scale,
                overwrite=overwrite,
                on_progress=lambda i, n: report(900 + 100 * i // n, 1000),
                should_cancel=should_cancel,
            )
            return "Wrote " + " and ".join(str(p) for p in written)

        self._start_job(work, f"Sampling {len(labels) * len(seeds)} CNN and machine pairs …")
        return True
