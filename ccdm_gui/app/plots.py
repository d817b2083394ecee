"""Correlation(CNN, machine) against t, and the receptive-field schedule P(t).

The t axis runs from 1 (noise) on the left to 0 (sample) on the right, the order in
which the frames are generated. A vertical line marks the frame on screen; dragging it
scrubs like the timeline.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

_FG = (220, 220, 220)


def _plot(title: str, ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget(background=(28, 28, 30))
    w.setTitle(title, color=_FG, size="10pt")
    w.setLabel("bottom", "t")
    w.setLabel("left", ylabel)
    w.showGrid(x=True, y=True, alpha=0.25)
    w.setXRange(0, 1, padding=0.02)
    w.getViewBox().invertX(True)
    w.setMouseEnabled(x=False, y=False)
    w.setMenuEnabled(False)
    w.hideButtons()
    w.setMinimumHeight(150)
    # The t axis ends at 0 on the right edge; without a margin its last tick label is cut.
    w.getPlotItem().layout.setContentsMargins(4, 4, 14, 4)
    return w


class Plots(QWidget):
    marker_moved = Signal(float)  # t chosen by dragging the marker

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.corr = _plot("r(CNN, machine) of x0_hat", "r")
        self.corr.setYRange(-0.2, 1.0, padding=0.02)
        self.corr_curve = self.corr.plot(
            [],
            [],
            pen=pg.mkPen((90, 170, 255), width=2),
            symbol="o",
            symbolSize=5,
            symbolBrush=(90, 170, 255),
            symbolPen=None,
        )
        # The key is in the title, not a legend box inside the plot, which covered the
        # curve wherever P was high.
        self.sched = _plot(
            "P(t): <span style='color:#ffaa3c'>&#9632; used</span> &nbsp; "
            "<span style='color:#aaaaaa'>- - calibrated</span>",
            "P",
        )
        self.p_used = self.sched.plot(
            [],
            [],
            pen=pg.mkPen((255, 170, 60), width=2),
            stepMode=None,
            symbol="s",
            symbolSize=5,
            symbolBrush=(255, 170, 60),
            symbolPen=None,
            name="used by the machine",
        )
        self.p_cal = self.sched.plot(
            [],
            [],
            pen=pg.mkPen((170, 170, 170), width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
            name="calibrated",
        )
        pen = pg.mkPen((255, 80, 80), width=2)
        self.markers = []
        for w in (self.corr, self.sched):
            m = pg.InfiniteLine(angle=90, movable=True, pen=pen, hoverPen=pg.mkPen("w", width=3))
            m.setBounds((0, 1))
            m.sigDragged.connect(self._dragged)
            w.addItem(m)
            self.markers.append(m)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.corr, 3)
        lay.addWidget(self.sched, 2)

    def _dragged(self, line) -> None:
        self.marker_moved.emit(float(line.value()))

    def set_correlation(self, t: np.ndarray, r: np.ndarray) -> None:
        t = np.asarray(t, dtype=float)
        r = np.asarray(r, dtype=float)
        ok = np.isfinite(r)
        self.corr_curve.setData(t[ok], r[ok])
        lo = min(-0.2, float(np.nanmin(r)) - 0.05) if ok.any() else -0.2
        self.corr.setYRange(lo, 1.0, padding=0.02)

    def set_schedule(self, t_used, p_used, calibrated: list[int] | None) -> None:
        self.p_used.setData(np.asarray(t_used, dtype=float), np.asarray(p_used, dtype=float))
        if calibrated:
            # Entry k of a calibrated schedule belongs to t = (k + 1) / len.
            n = len(calibrated)
            self.p_cal.setData((np.arange(n) + 1.0) / n, np.asarray(calibrated, dtype=float))
        else:
            self.p_cal.setData([], [])
        top = max([3.0, *np.asarray(p_used, dtype=float).tolist(), *(calibrated or [])])
        self.sched.setYRange(0, top + 2, padding=0.02)

    def set_marker(self, t: float | None) -> None:
        for m in self.markers:
            if t is None:
                m.hide()
            else:
                m.show()
                b = m.blockSignals(True)
                m.setValue(t)
                m.blockSignals(b)

    def clear(self) -> None:
        self.corr_curve.setData([], [])
        self.p_used.setData([], [])
        self.set_marker(None)
