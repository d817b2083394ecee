"""Where one pixel came from: the winning training patch, the noisy patch it was matched
against, and the runners-up with their softmax weights.

What the trajectory already holds (winner, weight, entropy, the noisy patch) is shown at
once; the training images and the top candidates come from the worker thread.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDockWidget,
    QGridLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core import render
from .panels import rgb_pixmap
from .worker import InspectRequest, InspectResult

# The inspector is one column this wide (plus its scrollbar), so it fits beside the Run
# dock and the panels from the smallest window up; images are scaled to fit it.
WIDTH = 300
_CAND_COLUMNS = 3
_SOURCE_PX = WIDTH - 40
_PATCH_PX = (WIDTH - 60) // 2
_THUMB_PX = (WIDTH - 40) // _CAND_COLUMNS - 8


def fit_scale(pixels: int, room: int, smallest: int = 1) -> int:
    """The largest whole upscale that fits ``pixels`` image pixels into ``room``."""
    return max(smallest, room // max(1, pixels))


def crop(img: np.ndarray, centre: tuple[int, int], size: int, boundary: str) -> np.ndarray:
    """The size x size window of img [C, H, W] centred on ``centre``, padded as the
    machine pads (zeros or circular), so it is the query the machine actually saw."""
    d = size // 2
    mode = "wrap" if boundary == "circular" else "constant"
    padded = np.pad(img, ((0, 0), (d, d), (d, d)), mode=mode)
    r, c = centre
    return padded[:, r : r + size, c : c + size]


class Inspector(QDockWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Pixel inspector", parent)
        self.setObjectName("inspector")
        self.setAllowedAreas(
            Qt.DockWidgetArea.RightDockWidgetArea | Qt.DockWidgetArea.LeftDockWidgetArea
        )
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 6)
        self.header = QLabel("Click a pixel of any panel.")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.header)

        src_box = QGroupBox("Source training image")
        sl = QVBoxLayout(src_box)
        self.source = QLabel()
        self.source.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.source_caption = QLabel()
        self.source_caption.setWordWrap(True)
        sl.addWidget(self.source)
        sl.addWidget(self.source_caption)
        lay.addWidget(src_box)

        pair_box = QGroupBox("Noisy query and winning patch")
        pair = QGridLayout(pair_box)
        self.noisy = QLabel()
        self.noisy.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.winner_patch = QLabel()
        self.winner_patch.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for col, (img, text) in enumerate(((self.noisy, "query"), (self.winner_patch, "winner"))):
            cap = QLabel(text)
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pair.addWidget(img, 0, col)
            pair.addWidget(cap, 1, col)
        lay.addWidget(pair_box)

        cand_box = QGroupBox("Top candidates (weight)")
        self.cand_grid = QGridLayout(cand_box)
        self.cand_grid.setSpacing(4)
        self.cand_status = QLabel("")
        self.cand_status.setWordWrap(True)
        lay.addWidget(cand_box)
        lay.addWidget(self.cand_status)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        body.setFixedWidth(WIDTH)
        scroll.setFixedWidth(WIDTH + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.setWidget(scroll)
        self.request: InspectRequest | None = None
        self.result: InspectResult | None = None

    def begin(self, req: InspectRequest, entropy: float, full_index: int, note: str = "") -> None:
        """Show what the trajectory knows now; candidates follow via ``set_result``.
        ``note``: a line on the patch's copies (a generic patch, shared by images)."""
        self.request, self.result = req, None
        r, c = req.pixel
        sr, sc = req.source_yx
        self.header.setText(
            f"<b>pixel (row {r}, col {c})</b> at step {req.step + 1}, t = {req.t:.2f}, "
            f"P = {req.patch_size}<br>"
            f"source: training image <b>#{full_index}</b> (index in the full dataset), "
            f"patch centre (row {sr}, col {sc}), weight {req.weight:.3f}, "
            f"entropy {entropy:.2f} nats" + (f"<br>{note}" if note else "")
        )
        q = crop(req.x_t, req.pixel, req.patch_size, req.spec.boundary)
        scale = fit_scale(req.patch_size, _PATCH_PX, 2)
        self.noisy.setPixmap(rgb_pixmap(render.image_rgb(q), scale))
        self.source.setText("loading…")
        self.source_caption.setText("")
        self.winner_patch.clear()
        self._clear_candidates()
        self.cand_status.setText("computing the top candidates…")
        self.show()
        self.raise_()

    def _clear_candidates(self) -> None:
        while self.cand_grid.count():
            w = self.cand_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()

    def set_result(self, res: InspectResult) -> None:
        if res.request is not self.request:
            return
        self.result = res
        if res.error:
            self.source.setText("")
            self.cand_status.setText(f"<span style='color:#e66'>{res.error}</span>")
            return
        req = res.request
        p, d = req.patch_size, req.patch_size // 2
        sr, sc = req.source_yx
        outline = (sr - d, sc - d, p, p)
        src = res.source_image
        scale = fit_scale(max(src.shape[-2:]), _SOURCE_PX)
        self.source.setPixmap(rgb_pixmap(render.image_rgb(src), scale, outline))
        self.source_caption.setText(
            f"#{res.dataset_index}, winning {p}×{p} patch outlined, centre ({sr}, {sc})"
        )
        scale = fit_scale(p, _PATCH_PX, 2)
        win = crop(res.source_image, (sr, sc), p, "zeros")
        self.winner_patch.setPixmap(rgb_pixmap(render.image_rgb(win), scale))
        self._clear_candidates()
        for i, cand in enumerate(res.candidates):
            cell = QWidget()
            cl = QVBoxLayout(cell)
            cl.setContentsMargins(0, 0, 0, 0)
            cl.setSpacing(1)
            img = QLabel()
            cy, cx = cand.yx
            img.setPixmap(
                rgb_pixmap(
                    render.image_rgb(cand.image),
                    fit_scale(max(cand.image.shape[-2:]), _THUMB_PX),
                    (cy - d, cx - d, p, p),
                    QColor(255, 200, 0) if i else QColor(255, 60, 60),
                )
            )
            txt = QLabel(f"#{cand.dataset_index} ({cy},{cx})<br><b>w={cand.weight:.3f}</b>")
            txt.setTextFormat(Qt.TextFormat.RichText)
            cl.addWidget(img)
            cl.addWidget(txt)
            self.cand_grid.addWidget(cell, i // _CAND_COLUMNS, i % _CAND_COLUMNS)
        total = sum(c.weight for c in res.candidates)
        self.cand_status.setText(
            f"{len(res.candidates)} heaviest candidates hold {total:.1%} of the weight."
        )
