"""The linked image panels (CNN, machine, provenance, difference) and the colour key.

All panels share one zoom and pan (ViewBox X/Y links). Images are the uint8 RGB
arrays of core.render shown as they are: no levels, no smoothing, so each image pixel
is a crisp square at any zoom and the screen matches an export.
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPen,
    QPixmap,
    QTextOption,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..core import render
from ..core.view import DEFAULT_VIEW
from .elided import ElidedLabel

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


# Caption parts are joined by render.SEP or by two spaces (FrameStore.captions); a caption
# too wide for its panel breaks between parts, never inside one.
_PARTS = re.compile(r"\s+\u00b7\s+|\s{2,}")
_JOIN = " \u00b7 "
CAPTION_LINES = 2


def fit_lines(text: str, width: int, advance, elide, max_lines: int = CAPTION_LINES) -> list[str]:
    """Break ``text`` into at most ``max_lines`` lines no wider than ``width`` pixels:
    between its parts where it must, eliding (``elide(s, width)``) a line that still
    does not fit. ``advance(s)`` is the pixel width of ``s``."""
    if not text or advance(text) <= width:
        return [text]
    parts = [p for p in _PARTS.split(text) if p]
    lines: list[str] = []
    while parts and len(lines) < max_lines - 1:
        line = parts.pop(0)
        while parts and advance(line + _JOIN + parts[0]) <= width:
            line += _JOIN + parts.pop(0)
        lines.append(line)
    if parts:
        lines.append(_JOIN.join(parts))
    return [s if advance(s) <= width else elide(s, width) for s in lines]


class Caption(pg.LabelItem):
    """A caption that fits its panel: one line when it can, else broken between its
    parts onto a second line, else elided (the full text is the tooltip); never printed
    over its neighbour. It changes every frame without a layout pass (LabelItem's own
    setText relayouts the whole grid, which cost more than everything else in a
    redraw); only a change in the number of lines, on a resize, relayouts."""

    def __init__(self):
        self._lines = 0
        super().__init__("", color=(230, 230, 230))
        font = QFont()
        font.setPointSizeF(11.0)
        self.item.setFont(font)
        self.item.setDefaultTextColor(QColor(230, 230, 230))
        self.item.document().setDocumentMargin(1)
        option = QTextOption(Qt.AlignmentFlag.AlignHCenter)
        option.setWrapMode(QTextOption.WrapMode.NoWrap)
        self.item.document().setDefaultTextOption(option)
        self._metrics = QFontMetrics(font)
        self.text = ""
        self.shown = ""
        self._set_lines(1)

    def _set_lines(self, n: int) -> None:
        if n == self._lines:
            return
        self._lines = n
        height = n * self._metrics.lineSpacing() + 6
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def set_caption(self, text: str) -> None:
        if text == self.text:
            return
        self.text = text
        self._fit(resized=False)

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        if self._lines:  # not while LabelItem's constructor lays it out
            self._fit(resized=True)

    def _fit(self, resized: bool) -> None:
        width = max(1, int(self.width()) - 6)
        m = self._metrics
        lines = fit_lines(
            self.text,
            width,
            m.horizontalAdvance,
            lambda s, w: m.elidedText(s, Qt.TextElideMode.ElideRight, w),
        )
        # A new frame's caption may add a line but never removes one (its width changes
        # with the digits; a row of captions would otherwise relayout every few frames).
        self._set_lines(len(lines) if resized else max(len(lines), self._lines))
        shown = "\n".join(lines)
        if shown != self.shown:
            self.shown = shown
            self.item.setPlainText(shown)
            self.setToolTip(self.text if shown != self.text else "")
        if resized:
            self.item.setTextWidth(width + 4)
            self.item.setPos(1, 0)

    def text_width(self) -> float:
        """Widest line on screen, in pixels (for tests of the fit)."""
        return max((self._metrics.horizontalAdvance(s) for s in self.shown.split("\n")), default=0)


class ImagePanels(QWidget):
    """A row of linked ViewBoxes with a caption above each."""

    hovered = Signal(str, int, int)  # panel, row, col (row = -1: left the image)
    clicked = Signal(str, int, int)
    zoomed = Signal()  # the user zoomed or panned: the views stop following their size

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
        # The views fit the image whenever their size changes, until the user zooms or
        # pans; Reset zoom (or a double click) fits again and resumes following.
        self.user_zoomed = False
        self._fit_queued = False
        self._columns = 0
        for name in render.PANELS:
            label = Caption()
            box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
            box.setBorder(pg.mkPen((90, 90, 96)))
            box.setBackgroundColor(_BLANK_COLOR)
            item = pg.ImageItem(axisOrder="row-major")
            item.setAutoDownsample(False)
            box.addItem(item)
            box.sigRangeChangedManually.connect(self._on_user_zoom)
            box.sigResized.connect(self._queue_fit)
            self.boxes[name], self.items[name], self.labels[name] = box, item, label
        self.set_panels(DEFAULT_VIEW.panels)
        self.view.scene().sigMouseMoved.connect(self._on_move)
        self.view.scene().sigMouseClicked.connect(self._on_click)

    def set_panels(self, names: list[str]) -> None:
        if names == self._visible:
            return
        self._place(list(names), self._best_columns(len(names)))

    def _place(self, names: list[str], columns: int) -> None:
        """Lay ``names`` out in rows of ``columns`` panels, each under its caption."""
        ci = self.view.ci
        first = self.boxes["cnn"]
        for name in self._visible:
            ci.removeItem(self.labels[name])
            ci.removeItem(self.boxes[name])
            # A box out of the layout still gets resized; linked, it would drag the
            # shown boxes' range along with it.
            if name != "cnn":
                self.boxes[name].setXLink(None)
                self.boxes[name].setYLink(None)
        for i, name in enumerate(names):
            row, col = 2 * (i // columns), i % columns
            ci.addItem(self.labels[name], row=row, col=col)
            ci.addItem(self.boxes[name], row=row + 1, col=col)
            if name != "cnn":
                self.boxes[name].setXLink(first)
                self.boxes[name].setYLink(first)
        lay = ci.layout
        for col in range(lay.columnCount()):
            lay.setColumnStretchFactor(col, 1 if col < columns else 0)
        for row in range(lay.rowCount()):
            lay.setRowStretchFactor(row, row % 2)
        # Removing and adding items shrinks the layout item to its preferred size, and
        # the view sets its geometry only when the view itself is resized.
        ci.setGeometry(self.view.range)
        self._visible = list(names)
        self._columns = columns
        self._queue_fit()

    def _best_columns(self, n: int) -> int:
        """The number of columns that shows the images largest in the panels' area: one
        row when the area is wide, a 2 x 2 grid of four panels when it is narrow."""
        if n <= 1:
            return 1
        h_img, w_img = self._shape or (1, 1)
        width, height = max(1, self.view.width()), max(1, self.view.height())
        caption = self.labels["cnn"].minimumHeight()
        gap = 8  # layout spacing and margins, per panel
        best, best_size = n, 0.0
        # Only full grids (4: one row or 2 x 2, never 3 + 1).
        for cols in (c for c in range(n, 0, -1) if n % c == 0):
            rows = n // cols
            cell_w = (width - gap * cols) / cols
            cell_h = (height - rows * (caption + gap)) / rows
            size = min(cell_w / w_img, cell_h / h_img)
            if size > best_size * 1.05:  # prefer one row unless a grid is clearly larger
                best, best_size = cols, size
        return best

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(ev)
        cols = self._best_columns(len(self._visible))
        if self._visible and cols != self._columns:
            self._place(self._visible, cols)

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
        """Fit the image to the panels and follow their size again."""
        self.user_zoomed = False
        self._fit()

    def _fit(self) -> None:
        self._fit_queued = False
        if self._shape is not None and not self.user_zoomed:
            h, w = self._shape
            self.boxes["cnn"].setRange(QRectF(0, 0, w, h), padding=0.02)

    def _queue_fit(self, _box=None) -> None:
        # All boxes resize together; fit once, after the layout has settled.
        if not self._fit_queued and not self.user_zoomed:
            self._fit_queued = True
            QTimer.singleShot(0, self._fit)

    def _on_user_zoom(self, _mask) -> None:
        self.user_zoomed = True
        self.zoomed.emit()

    def image_shape(self) -> tuple[int, int] | None:
        return self._shape

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
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        if ev.double():
            self.reset_zoom()
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
    PLANE_PX = 36

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
            # Entries elide to the room they get, never pushing the key past its width.
            sw, text = QLabel(), ElidedLabel(min_chars=5)
            sw.setFixedSize(12, 12)
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
        for w in (self.title, self.lo, self.image, self.hi, self.note):
            lay.addWidget(w)
        # The entries' labels ignore their text's width (they elide), so the grid takes
        # the rest of the row, shared equally by its columns; without the stretch it
        # would shrink to the swatches alone and show no words.
        lay.addWidget(self.cats, 1)
        for col in range(4):
            g.setColumnStretch(col, 1)
        lay.addStretch(0)
        self._last = None
        self._colours: list = [None] * self.MAX_ITEMS
        # One height for every kind of key, so switching provenance mode never moves
        # the panels; and no minimum width, so a long key never widens the window.
        line = QFontMetrics(self.font()).lineSpacing()
        self.setFixedHeight(max(2 * max(line, 12) + 6, self.PLANE_PX) + 4)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

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
                        text.setToolTip(label)
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
            self.image.setPixmap(rgb_pixmap(plane, max(1, self.PLANE_PX // max(plane.shape[:2]))))
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
