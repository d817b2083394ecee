"""The linked image panels (CNN, machine, provenance, difference) and the colour key.

All panels share one zoom and pan (ViewBox X/Y links). Images are the uint8 RGB
arrays of core.render shown as they are: no levels, no smoothing, so each image pixel
is a crisp square at any zoom and the screen matches an export.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..core import render
from ..core.view import DEFAULT_VIEW

_BLANK_COLOR = (40, 40, 44)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    # QImage borrows the buffer; copy() detaches it before the array can go away.
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgb_pixmap(
    rgb: np.ndarray,
    scale: int,
    rect: tuple[int, int, int, int] | None = None,
    color: QColor | None = None,
) -> QPixmap:
    """Nearest-neighbour upscale (crisp pixels) with an optional outlined rectangle
    (row0, col0, rows, cols) in image pixels; the outline may extend past the edge."""
    img = rgb_to_qimage(np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1))
    pm = QPixmap.fromImage(img)
    if rect is not None:
        r0, c0, nr, nc = rect
        p = QPainter(pm)
        pen = QPen(color or QColor(255, 60, 60))
        pen.setWidth(max(2, scale // 3))
        p.setPen(pen)
        p.drawRect(QRectF(c0 * scale, r0 * scale, nc * scale - 1, nr * scale - 1))
        p.end()
    return pm


class Caption(pg.LabelItem):
    """A one-line caption that changes every frame without a layout pass: LabelItem's
    own setText resizes itself and relayouts the whole grid, which cost more than
    everything else in a redraw."""

    def __init__(self):
        super().__init__("", color=(230, 230, 230))
        font = QFont()
        font.setPointSizeF(11.0)
        self.item.setFont(font)
        self.item.setDefaultTextColor(QColor(230, 230, 230))
        height = QFontMetrics(font).height() + 6
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)
        self.text = ""

    def set_caption(self, text: str) -> None:
        if text == self.text:
            return
        self.text = text
        self.item.setPlainText(text)
        self._centre()

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        self._centre()

    def _centre(self) -> None:
        br = self.item.boundingRect()
        self.item.setPos(max(0.0, (self.width() - br.width()) / 2), 0)


class ImagePanels(QWidget):
    """A row of linked ViewBoxes with a caption above each."""

    hovered = Signal(str, int, int)  # panel, row, col (row = -1: left the image)
    clicked = Signal(str, int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground((28, 28, 30))
        self.view.ci.setContentsMargins(2, 2, 2, 2)
        self.view.ci.setSpacing(6)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.boxes: dict[str, pg.ViewBox] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.labels: dict[str, Caption] = {}
        self._shape: tuple[int, int] | None = None
        self._visible: list[str] = []
        for name in render.PANELS:
            label = Caption()
            box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
            box.setBorder(pg.mkPen((90, 90, 96)))
            box.setBackgroundColor(_BLANK_COLOR)
            item = pg.ImageItem(axisOrder="row-major")
            item.setAutoDownsample(False)
            box.addItem(item)
            self.boxes[name], self.items[name], self.labels[name] = box, item, label
        first = self.boxes["cnn"]
        for name in render.PANELS[1:]:
            self.boxes[name].setXLink(first)
            self.boxes[name].setYLink(first)
        self.set_panels(DEFAULT_VIEW.panels)
        self.view.scene().sigMouseMoved.connect(self._on_move)
        self.view.scene().sigMouseClicked.connect(self._on_click)

    def set_panels(self, names: list[str]) -> None:
        if names == self._visible:
            return
        ci = self.view.ci
        for name in self._visible:
            ci.removeItem(self.labels[name])
            ci.removeItem(self.boxes[name])
        for col, name in enumerate(names):
            ci.addItem(self.labels[name], row=0, col=col)
            ci.addItem(self.boxes[name], row=1, col=col)
        for col in range(len(names)):
            ci.layout.setColumnStretchFactor(col, 1)
        ci.layout.setRowStretchFactor(0, 0)
        ci.layout.setRowStretchFactor(1, 1)
        self._visible = list(names)

    @property
    def visible_panels(self) -> list[str]:
        return list(self._visible)

    def show_frame(self, images: dict[str, np.ndarray], captions: dict[str, str]) -> None:
        """Put pixels on screen. A panel without an image shows an empty dark box."""
        for name in self._visible:
            rgb = images.get(name)
            item = self.items[name]
            if rgb is None:
                item.clear()
            else:
                item.setImage(rgb, autoLevels=False)
                shape = rgb.shape[:2]
                if shape != self._shape:
                    self._shape = shape
                    self.reset_zoom()
            self.labels[name].set_caption(captions.get(name, ""))

    def reset_zoom(self) -> None:
        if self._shape is not None:
            h, w = self._shape
            self.boxes["cnn"].setRange(QRectF(0, 0, w, h), padding=0.02)

    def _pixel_at(self, scene_pos: QPointF) -> tuple[str, int, int] | None:
        if self._shape is None:
            return None
        for name in self._visible:
            box = self.boxes[name]
            if box.sceneBoundingRect().contains(scene_pos):
                p = box.mapSceneToView(scene_pos)
                r, c = int(np.floor(p.y())), int(np.floor(p.x()))
                h, w = self._shape
                if 0 <= r < h and 0 <= c < w:
                    return name, r, c
                return None
        return None

    def _on_move(self, pos: QPointF) -> None:
        hit = self._pixel_at(pos)
        if hit is None:
            self.hovered.emit("", -1, -1)
        else:
            self.hovered.emit(*hit)

    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        hit = self._pixel_at(ev.scenePos())
        if hit is not None:
            self.clicked.emit(*hit)


class LegendWidget(QWidget):
    """The colour key of the provenance panel: a bar with its range, a list of
    categories, or the 2-D position plane. The category entries change with every
    frame, so they are a fixed pool of swatches updated in place (rebuilding widgets
    per frame cost more than the whole rest of a redraw)."""

    MAX_ITEMS = 8

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.lo, self.hi = QLabel(), QLabel()
        self.image = QLabel()
        self.note = QLabel()
        self.swatches: list[tuple[QLabel, QLabel]] = []
        self.cats = QWidget()
        g = QGridLayout(self.cats)
        g.setContentsMargins(0, 0, 0, 0)
        g.setHorizontalSpacing(10)
        g.setVerticalSpacing(0)
        for i in range(self.MAX_ITEMS):
            sw, text = QLabel(), QLabel()
            sw.setFixedSize(12, 12)
            text.setMinimumWidth(46)
            cell = QWidget()
            cl = QHBoxLayout(cell)
            cl.setContentsMargins(0, 0, 0, 0)
            cl.setSpacing(3)
            cl.addWidget(sw)
            cl.addWidget(text)
            g.addWidget(cell, i // 4, i % 4)
            self.swatches.append((sw, text))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 2)
        lay.setSpacing(6)
        for w in (self.title, self.lo, self.image, self.hi, self.note, self.cats):
            lay.addWidget(w)
        lay.addStretch(1)
        self._last = None
        self._colours: list = [None] * self.MAX_ITEMS

    def set_legend(self, leg) -> None:
        if leg.kind == "categories":
            self._set_kind("categories", leg.label)
            entries = list(leg.colors)[: self.MAX_ITEMS]
            for i, (sw, text) in enumerate(self.swatches):
                if i < len(entries):
                    label, rgb = entries[i]
                    if self._colours[i] != rgb:
                        pm = QPixmap(12, 12)
                        pm.fill(QColor(*rgb))
                        sw.setPixmap(pm)
                        self._colours[i] = rgb
                    if text.text() != label:
                        text.setText(label)
                    sw.setVisible(True)
                else:
                    sw.setVisible(False)
                    text.setText("")
            return
        sig = (leg.kind, leg.label, leg.vmin, leg.vmax)
        if sig == self._last:
            return
        self._set_kind(leg.kind, leg.label)
        self._last = sig
        if leg.kind == "bar":
            lut = np.asarray(leg.colors, dtype=np.uint8)
            strip = np.repeat(lut[None, :, :], 12, axis=0)
            self.image.setPixmap(
                QPixmap.fromImage(rgb_to_qimage(strip)).scaled(
                    220,
                    12,
                    Qt.AspectRatioMode.IgnoreAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )
            )
            self.lo.setText(f"{leg.vmin:g}")
            self.hi.setText(f"{leg.vmax:.3g}")
        else:
            plane = np.asarray(leg.colors, dtype=np.uint8)
            self.image.setPixmap(rgb_pixmap(plane, max(1, 40 // max(plane.shape[:2]))))
            self.note.setText("patch centre in its training image: top-left (0, 0)")

    def _set_kind(self, kind: str, label: str) -> None:
        if self._last is not None and self._last[0] == kind and self.title.text() == label + ":":
            return
        self._last = (kind, label, None, None)
        self.title.setText(label + ":")
        self.lo.setVisible(kind == "bar")
        self.hi.setVisible(kind == "bar")
        self.image.setVisible(kind in ("bar", "plane"))
        self.note.setVisible(kind == "plane")
        self.cats.setVisible(kind == "categories")
