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
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core import render
from .panels import rgb_pixmap
from .worker import InspectRequest, InspectResult

_SRC_SCALE = 7
_THUMB_SCALE = 3


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
        self.header = QLabel("Click a pixel of any panel.")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.header)

        pair = QHBoxLayout()
        src_box = QGroupBox("Source training image")
        sl = QVBoxLayout(src_box)
        self.source = QLabel()
        self.source.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.source_caption = QLabel()
        self.source_caption.setWordWrap(True)
        sl.addWidget(self.source)
        sl.addWidget(self.source_caption)
        noisy_box = QGroupBox("Noisy patch (query)")
        nl = QVBoxLayout(noisy_box)
        self.noisy = QLabel()
        self.noisy.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.winner_patch = QLabel()
        self.winner_patch.setAlignment(Qt.AlignmentFlag.AlignCenter)
        nl.addWidget(self.noisy)
        nl.addWidget(QLabel("winning training patch:"))
        nl.addWidget(self.winner_patch)
        nl.addStretch(1)
        pair.addWidget(src_box)
        pair.addWidget(noisy_box)
        lay.addLayout(pair)

        cand_box = QGroupBox("Top candidates (softmax weight)")
        self.cand_grid = QGridLayout(cand_box)
        self.cand_grid.setSpacing(4)
        self.cand_status = QLabel("")
        lay.addWidget(cand_box)
        lay.addWidget(self.cand_status)
        lay.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.request: InspectRequest | None = None
        self.result: InspectResult | None = None

    def begin(self, req: InspectRequest, entropy: float, full_index: int) -> None:
        """Show what the trajectory knows now; candidates follow via ``set_result``."""
        self.request, self.result = req, None
        r, c = req.pixel
        sr, sc = req.source_yx
        self.header.setText(
            f"<b>pixel (row {r}, col {c})</b> at step {req.step + 1}, t = {req.t:.2f}, "
            f"P = {req.patch_size}<br>"
            f"source: training image <b>#{full_index}</b> (index in the full dataset), "
            f"patch centre (row {sr}, col {sc}), weight {req.weight:.3f}, "
            f"entropy {entropy:.2f} nats"
        )
        q = crop(req.x_t, req.pixel, req.patch_size, req.spec.boundary)
        scale = max(4, 140 // max(1, req.patch_size))
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
        self.source.setPixmap(rgb_pixmap(render.image_rgb(res.source_image), _SRC_SCALE, outline))
        self.source_caption.setText(
            f"#{res.dataset_index}, winning {p}×{p} patch outlined, centre ({sr}, {sc})"
        )
        scale = max(4, 140 // max(1, p))
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
                    _THUMB_SCALE,
                    (cy - d, cx - d, p, p),
                    QColor(255, 200, 0) if i else QColor(255, 60, 60),
                )
            )
            txt = QLabel(f"#{cand.dataset_index} ({cy},{cx})<br><b>w = {cand.weight:.3f}</b>")
            txt.setTextFormat(Qt.TextFormat.RichText)
            cl.addWidget(img)
            cl.addWidget(txt)
            self.cand_grid.addWidget(cell, i // 4, i % 4)
        total = sum(c.weight for c in res.candidates)
        self.cand_status.setText(
            f"{len(res.candidates)} heaviest candidates hold {total:.1%} of the weight."
        )
