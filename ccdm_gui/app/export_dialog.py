"""File > Export frames / Export video: choose settings, then export off the GUI thread.

The export itself is ccdm_gui.export (no Qt); this dialog only gathers its arguments,
runs it on a QThread with a progress bar and Cancel (JobDialog), and shows any error as a message.
A cancelled or failed export leaves nothing on disk (export's atomic writes).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .. import export
from ..core import provenance, render
from ..core.spec import Comparison
from ..core.view import DEFAULT_VIEW, View
from .job_dialog import JobDialog


class ExportDialog(JobDialog):
    """``ExportDialog(parent, comparison, view, kind)`` with ``view`` the window's View
    (the starting choice) and ``kind`` "frames" or "video".

    ``start_export(path, overwrite=False)`` starts without the file chooser or the
    overwrite question (for tests and scripted use); ``job_finished(ok, message)``
    is emitted when the export ends (also after cancel and errors). ``cancel()``
    requests cancellation.
    """

    job_name = "Export"

    def __init__(
        self,
        parent: QWidget | None,
        comparison: Comparison,
        view: View = DEFAULT_VIEW,
        kind: str = "video",
    ):
        if kind not in ("frames", "video"):
            raise ValueError(f"kind must be 'frames' or 'video', got {kind!r}")
        title = "Export frames" if kind == "frames" else "Export video"
        super().__init__(parent, title, QDialogButtonBox.StandardButton.Cancel)
        self.comp, self.kind = comparison, kind

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

        self.progress.setRange(0, max(len(comparison.cnn.t), 1))
        self.progress.setFormat("%v / %m")
        self.start_button.setDefault(True)
        self.job_finished.connect(self._after_export)
        summary = QLabel(render.title(comparison) + f" · {len(comparison.cnn.t)} steps")
        summary.setWordWrap(True)
        self._lay_out(summary, form)
        self._inputs = [
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
    def _on_start_clicked(self) -> None:
        if self.running:
            return
        text = self.path_edit.text().strip()
        if not text:
            self._show(False, "Choose where to export to.")
            return
        path = Path(text).expanduser()
        overwrite = False
        if self._would_overwrite(path):
            if not self._confirm_overwrite(path):
                return
            overwrite = True
        self.start_export(path, overwrite=overwrite)

    def start_export(self, path: str | Path, overwrite: bool = False) -> bool:
        """Start exporting to ``path`` with the dialog's current settings. Returns False
        (and does nothing) if an export is already running."""
        if self.running:
            return False
        path = Path(path)
        self.path_edit.setText(str(path))
        options = self.options()
        options["overwrite"] = overwrite
        comp, kind = self.comp, self.kind

        def work(report, should_cancel) -> str:
            common = dict(on_progress=report, should_cancel=should_cancel)
            if kind == "frames":
                paths = export.export_frames(comp, path, **options, **common)
                return f"Wrote {len(paths)} frames to {path}"
            return f"Wrote {export.export_video(comp, path, **options, **common)}"

        self._start_job(work, f"Exporting to {path} …")
        return True

    def _after_export(self, ok: bool, message: str) -> None:
        if ok:
            self.start_button.setText("Export again")

    def _set_running(self, on: bool) -> None:
        super()._set_running(on)
        if not on and self.kind == "video":
            # Formats without a quality setting keep it disabled.
            self.quality_spin.setEnabled(export.FORMATS[self.format()].quality_range is not None)


def _combo(items: list[tuple[str, str]], current: str) -> QComboBox:
    c = QComboBox()
    for value, label in items:
        c.addItem(label, value)
    i = c.findData(current)
    c.setCurrentIndex(max(i, 0))
    return c
