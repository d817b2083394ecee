"""The run's controls (model, data, machine, receptive field, view) and the timeline.

Widgets only say *what* changed (``changed(field)``); the main window decides what to
recompute. ``set_state`` updates every widget with its signals blocked, so echoing a
state back never triggers a run.
"""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import machine_registry as machines
from ..core import provenance
from ..core.view import View
from .elided import ElidedLabel

SPEC_FIELDS = (
    "subset",
    "seed",
    "label",
    "steps",
    "device",
    "machine",
    "boundary",
    "patch_size",
)


class ControlPanel(QWidget):
    changed = Signal(str)
    open_model = Signal()
    open_dataset = Signal()

    def __init__(self, devices: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self._image_size = 32
        self._conditional = 0

        # ------------------------------------------------------------- model and data
        self.model_label = ElidedLabel("—")
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_btn = QPushButton("Open…")
        self.model_btn.setToolTip("Open a checkpoint (.safetensors or .pt), Ctrl+O")
        self.model_btn.clicked.connect(self.open_model)
        self.dataset_label = ElidedLabel("—")
        self.dataset_btn = QPushButton("Open…")
        self.dataset_btn.setToolTip("Open a dataset file or folder, Ctrl+D")
        self.dataset_btn.clicked.connect(self.open_dataset)
        self.subset = QSpinBox()
        # 0, shown as "all": the whole training set (the spec's subset None).
        self.subset.setRange(0, 1_000_000)
        self.subset.setSpecialValueText("all")
        self.subset.setSingleStep(100)
        self.subset.setKeyboardTracking(False)
        self.subset.setToolTip(
            "training images the machine may copy from: the first N (of the chosen class, "
            "for a class-conditional model), or all of them (below 1)"
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setKeyboardTracking(False)
        self.new_seed = QPushButton("New seed")
        self.new_seed.setToolTip("draw another initial noise")
        self.new_seed.clicked.connect(self._on_new_seed)
        self.label = QComboBox()
        self.label.setToolTip("class label (for class-conditional models only)")
        self.steps = QSpinBox()
        self.steps.setRange(2, 200)
        self.steps.setKeyboardTracking(False)
        self.steps.setToolTip("DDIM steps on the grid t = i/n (the paper uses 20)")
        self.device = QComboBox()
        for d in devices:
            self.device.addItem(d, d)

        data_box = QGroupBox("Model and data")
        f = QFormLayout(data_box)
        f.addRow("Model", self._row(self.model_label, self.model_btn))
        f.addRow("Dataset", self._row(self.dataset_label, self.dataset_btn))
        f.addRow("Subset", self.subset)
        f.addRow("Seed", self._row(self.seed, self.new_seed))
        f.addRow("Class", self.label)
        f.addRow("Steps", self.steps)
        f.addRow("Device", self.device)

        # ------------------------------------------------------------- machine
        self.machine = QComboBox()
        for m in machines.TABLE:
            self.machine.addItem(m.label, m.name)
            self.machine.setItemData(
                self.machine.count() - 1, m.description, Qt.ItemDataRole.ToolTipRole
            )
        self.boundary = QComboBox()
        for b in machines.BOUNDARIES:
            self.boundary.addItem(b, b)
        self.boundary.setToolTip("how patches see past the image edge")
        self.calibrated = QCheckBox("calibrated P(t)")
        self.calibrated.setToolTip("follow the model's calibrated receptive-field schedule")
        self.p_slider = QSlider(Qt.Orientation.Horizontal)
        self.p_slider.setPageStep(1)
        self.p_slider.setToolTip("receptive field P (odd)")
        self.p_value = QLabel()
        self.p_value.setMinimumWidth(44)
        mach_box = QGroupBox("Score machine")
        f2 = QFormLayout(mach_box)
        f2.addRow("Machine", self.machine)
        f2.addRow("Boundary", self.boundary)
        f2.addRow("P", self.calibrated)
        f2.addRow("", self._row(self.p_slider, self.p_value))

        # ------------------------------------------------------------- view
        self.show_mode = QComboBox()
        self.show_mode.addItem("x0_hat (denoised estimate)", "x0")
        self.show_mode.addItem("x_t (noisy state)", "xt")
        self.prov_mode = QComboBox()
        for mode in provenance.MODES:
            self.prov_mode.addItem(mode.label, mode.key)
            self.prov_mode.setItemData(
                self.prov_mode.count() - 1, mode.legend_text, Qt.ItemDataRole.ToolTipRole
            )
        self.diff = QCheckBox("difference panel (CNN − machine)")
        view_box = QGroupBox("View")
        f3 = QFormLayout(view_box)
        f3.addRow("Show", self.show_mode)
        f3.addRow("Provenance", self.prov_mode)
        f3.addRow("", self.diff)

        lay = QVBoxLayout(self)
        lay.addWidget(data_box)
        lay.addWidget(mach_box)
        lay.addWidget(view_box)
        lay.addStretch(1)
        # Combo boxes as wide as a short entry: their longest entry would otherwise set
        # the Run dock's minimum width.
        for combo in self.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(10)

        for name, w in (("subset", self.subset), ("seed", self.seed), ("steps", self.steps)):
            w.valueChanged.connect(lambda _v, n=name: self.changed.emit(n))
        self.label.currentIndexChanged.connect(lambda _i: self.changed.emit("label"))
        self.device.currentIndexChanged.connect(lambda _i: self.changed.emit("device"))
        self.machine.currentIndexChanged.connect(self._on_machine)
        self.boundary.currentIndexChanged.connect(self._on_boundary)
        self.calibrated.toggled.connect(self._on_calibrated)
        self.p_slider.valueChanged.connect(self._on_p)
        self.show_mode.currentIndexChanged.connect(lambda _i: self.changed.emit("show"))
        self.prov_mode.currentIndexChanged.connect(lambda _i: self.changed.emit("prov_mode"))
        self.diff.toggled.connect(lambda _b: self.changed.emit("diff"))
        self.set_image_size(32)

    @staticmethod
    def _row(*widgets) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for i, x in enumerate(widgets):
            h.addWidget(x, 1 if i == 0 else 0)
        w.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return w

    # ------------------------------------------------------------- reading
    def patch_size(self) -> int | None:
        if self.calibrated.isChecked():
            return None
        return 3 + 2 * self.p_slider.value()

    def values(self) -> dict:
        return {
            "subset": self.subset.value() or None,
            "seed": self.seed.value(),
            "label": self.label.currentData(),
            "steps": self.steps.value(),
            "device": self.device.currentData(),
            "machine": self.machine.currentData(),
            "boundary": self.boundary.currentData(),
            "patch_size": self.patch_size(),
        }

    def view(self) -> View:
        return View(
            show=self.show_mode.currentData(),
            prov_mode=self.prov_mode.currentData(),
            diff=self.diff.isChecked(),
        )

    # ------------------------------------------------------------- writing
    def set_paths(self, model: str, dataset: str) -> None:
        self.model_label.setText(Path(model).name or model)
        self.model_label.setToolTip(model)
        self.dataset_label.setText(Path(dataset).name or dataset)
        self.dataset_label.setToolTip(dataset)

    def set_image_size(self, size: int) -> None:
        self._image_size = max(3, int(size))
        blocked = self.p_slider.blockSignals(True)
        keep = self.patch_size() if not self.calibrated.isChecked() else None
        # Odd P from 3 up to the image size (the ELS machines become LS at P >= size).
        top = self._image_size if self._image_size % 2 else self._image_size - 1
        self.p_slider.setRange(0, (max(top, 3) - 3) // 2)
        if keep is not None:
            self.p_slider.setValue(min((keep - 3) // 2, self.p_slider.maximum()))
        self.p_slider.blockSignals(blocked)
        self._show_p()

    def set_num_classes(self, n: int, names: list[str] | None = None) -> None:
        """A class picker for a class-conditional model (``names``: its classes' names)."""
        self._conditional = int(n)
        blocked = self.label.blockSignals(True)
        cur = self.label.currentData()
        self.label.clear()
        if n > 0:
            for k in range(n):
                name = names[k] if names is not None and k < len(names) else str(k)
                self.label.addItem(name if name == str(k) else f"{k} · {name}", k)
            self.label.setCurrentIndex(max(0, self.label.findData(cur)) if cur is not None else 0)
        else:
            self.label.addItem("— (unconditional model)", None)
        self.label.setEnabled(n > 0)
        self.label.blockSignals(blocked)

    def set_state(self, values: dict, view: View | None = None) -> None:
        widgets = [
            self.subset,
            self.seed,
            self.steps,
            self.device,
            self.machine,
            self.boundary,
            self.calibrated,
            self.p_slider,
            self.label,
            self.show_mode,
            self.prov_mode,
            self.diff,
        ]
        old = [w.blockSignals(True) for w in widgets]
        try:
            if "subset" in values:
                self.subset.setValue(int(values["subset"] or 0))
            if "seed" in values:
                self.seed.setValue(int(values["seed"]))
            if "steps" in values:
                self.steps.setValue(int(values["steps"]))
            if "device" in values:
                i = self.device.findData(values["device"])
                if i < 0:
                    self.device.addItem(values["device"], values["device"])
                    i = self.device.count() - 1
                self.device.setCurrentIndex(i)
            if "machine" in values:
                self.machine.setCurrentIndex(max(0, self.machine.findData(values["machine"])))
            if "boundary" in values:
                self.boundary.setCurrentIndex(max(0, self.boundary.findData(values["boundary"])))
            if "patch_size" in values:
                p = values["patch_size"]
                self.calibrated.setChecked(p is None)
                if p is not None:
                    self.p_slider.setValue((int(p) - 3) // 2)
            if "label" in values and self._conditional > 0:
                lab = values["label"]
                self.label.setCurrentIndex(max(0, self.label.findData(lab)))
            if view is not None:
                self.show_mode.setCurrentIndex(max(0, self.show_mode.findData(view.show)))
                self.prov_mode.setCurrentIndex(max(0, self.prov_mode.findData(view.prov_mode)))
                self.diff.setChecked(view.diff)
        finally:
            for w, b in zip(widgets, old, strict=True):
                w.blockSignals(b)
        self._show_p()

    def set_provenance_available(self, traj) -> None:
        """Offer only the provenance modes this run's trajectory can colour (the class
        label needs a labelled dataset)."""
        model = self.prov_mode.model()
        for i, mode in enumerate(provenance.MODES):
            model.item(i).setEnabled(mode.available(traj))

    # ------------------------------------------------------------- consistency
    def _show_p(self) -> None:
        whole = not machines.machine(self.machine.currentData()).has_patch_size
        self.calibrated.setEnabled(not whole)
        self.p_slider.setEnabled(not whole and not self.calibrated.isChecked())
        if whole:
            self.p_value.setText("image")
        elif self.calibrated.isChecked():
            self.p_value.setText("P(t)")
        else:
            self.p_value.setText(f"{3 + 2 * self.p_slider.value()}")

    def _on_machine(self, _i: int) -> None:
        # Keep the pair valid: a machine defined for one boundary only takes it along.
        fit = machines.fit_boundary(self.machine.currentData(), self.boundary.currentData())
        if fit != self.boundary.currentData():
            b = self.boundary.blockSignals(True)
            self.boundary.setCurrentIndex(self.boundary.findData(fit))
            self.boundary.blockSignals(b)
        self._show_p()
        self.changed.emit("machine")

    def _on_boundary(self, _i: int) -> None:
        boundary = self.boundary.currentData()
        if machines.fit_boundary(self.machine.currentData(), boundary) != boundary:
            # The machine is not defined for this boundary: switch to the one that is
            # this boundary's default (bbELS on circular becomes ELS).
            b = self.machine.blockSignals(True)
            self.machine.setCurrentIndex(self.machine.findData(machines.default_machine(boundary)))
            self.machine.blockSignals(b)
            self._show_p()
        self.changed.emit("boundary")

    def _on_calibrated(self, _checked: bool) -> None:
        self._show_p()
        self.changed.emit("patch_size")

    def _on_p(self, _v: int) -> None:
        self._show_p()
        self.changed.emit("patch_size")

    def _on_new_seed(self) -> None:
        self.seed.setValue(random.randrange(0, 2**31 - 1))


class Timeline(QWidget):
    """Noise-time slider over the frames, with play/pause, step, fps and loop."""

    step_changed = Signal(int)  # only when the user moves it
    play_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        st = self.style()
        self.play = QToolButton()
        self.play.setCheckable(True)
        self.play.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play.setToolTip("play / pause (Space)")
        self.prev = QToolButton()
        self.prev.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.prev.setToolTip("previous step (Left)")
        self.next = QToolButton()
        self.next.setIcon(st.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.next.setToolTip("next step (Right)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setPageStep(1)
        self.slider.setToolTip("noise time: left is t = 1 (pure noise), right is the sample")
        self.slider.setMinimumWidth(120)
        self.where = QLabel("no frames yet")
        self.where.setMinimumWidth(
            self.where.fontMetrics().horizontalAdvance("step 20/20  t = 0.05  P = 27") + 8
        )
        self.fps = QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(6)
        self.fps.setSuffix(" fps")
        self.loop = QCheckBox("loop")
        self.loop.setChecked(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        for w in (self.prev, self.play, self.next):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.where)
        lay.addWidget(self.fps)
        lay.addWidget(self.loop)
        self.slider.valueChanged.connect(self.step_changed)
        self.prev.clicked.connect(lambda: self.step_by(-1))
        self.next.clicked.connect(lambda: self.step_by(1))
        self.play.toggled.connect(self._on_play)

    def _on_play(self, on: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if on else QStyle.StandardPixmap.SP_MediaPlay
        self.play.setIcon(self.style().standardIcon(icon))
        self.play_toggled.emit(on)

    def step_by(self, d: int) -> None:
        self.slider.setValue(max(0, min(self.slider.maximum(), self.slider.value() + d)))

    def set_frames(self, n: int, current: int) -> None:
        b = self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, n - 1))
        self.slider.setValue(max(0, min(current, n - 1)))
        self.slider.blockSignals(b)

    def value(self) -> int:
        return self.slider.value()

    def set_where(self, text: str) -> None:
        self.where.setText(text)
