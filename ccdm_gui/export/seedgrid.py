"""A seed grid as a picture and a video: for each class two rows, the CNN's samples
above the machine's, one column per seed, the final correlation under each pair.

The PNG shows the final samples; the video one frame per sampling step (each step's
x0_hat, the way the window shows a run), then holds the last. Both files are written
atomically, and ``check_outputs`` refuses bad destinations before any sampling starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from .. import __version__
from ..core import machine_registry, render
from ..core.atomic import WriteError, atomic_file, check_destination
from ..core.grid import SeedGrid
from .compose import BACKGROUND, DIM, FOREGROUND, _fitted, _font, enlarge
from .metadata import _num, to_json
from .video import _write_video, video_format


def check_outputs(
    png: str | os.PathLike | None, video: str | os.PathLike | None, overwrite: bool = False
) -> None:
    """WriteError for an output that could not be written; call it before computing."""
    if png is None and video is None:
        raise WriteError("give a PNG file, a video file or both")
    if png is not None:
        if Path(png).suffix.lower() != ".png":
            raise WriteError(f"{png}: the picture must be a .png file")
        check_destination(Path(png), overwrite)
    if video is not None:
        video_format(video)
        check_destination(Path(video), overwrite)
    if png is not None and video is not None and Path(png).resolve() == Path(video).resolve():
        raise WriteError(f"{png}: the picture and the video need different names")


def grid_record(g: SeedGrid, view: dict) -> dict:
    """What the files record about themselves (PNG text chunk, video comment)."""
    return {
        "app": "ccdm-gui",
        "version": __version__,
        "kind": "seed-grid",
        "model": g.model,
        "dataset": g.dataset,
        "machine": g.machine,
        "boundary": g.boundary,
        "subset": g.subset,
        "steps": g.steps,
        "labels": g.labels,
        "classes": g.names,
        "seeds": g.seeds,
        "patch_size": g.patch_size.tolist(),
        "correlation": [[_num(v) for v in row] for row in g.correlation],
        "view": view,
    }


class GridComposer:
    """Frames of a seed grid at one fixed geometry (every video frame the same size)."""

    def __init__(self, g: SeedGrid, scale: int = 3):
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        self.g, self.scale = g, int(scale)
        _, _, _, _, h, w = g.cnn_x0.shape
        self.cell_w, self.cell_h = w * self.scale, h * self.scale
        self.gap = max(2, self.scale)
        self.font = _font(int(min(18, max(10, round(self.cell_h / 6)))))
        self.line = int(math.ceil(self.font.size * 1.6))
        self.margin = self.line // 2
        self.machine_title = machine_registry.label(g.machine)
        texts = [*g.names, "CNN", self.machine_title]
        self.label_w = int(max(self.font.getlength(t) for t in texts)) + self.margin
        self.block_h = 2 * self.cell_h + 2 * self.gap + self.line
        n_rows, n_cols = len(g.labels), len(g.seeds)
        width = 2 * self.margin + self.label_w + n_cols * self.cell_w + (n_cols - 1) * self.gap
        height = 2 * self.margin + 2 * self.line + n_rows * self.block_h
        # Even sizes, as H.264 in yuv420p needs.
        self.width, self.height = width + width % 2, height + height % 2
        self.title = (
            f"{Path(g.model).name} · {self.machine_title} · N = {g.subset or 'all'} per class · "
            f"{g.steps} steps"
        )

    def _x(self, col: int) -> int:
        return self.margin + self.label_w + col * (self.cell_w + self.gap)

    def _y(self, row: int) -> int:
        return self.margin + 2 * self.line + row * self.block_h

    def frame(self, step: int | None = None) -> np.ndarray:
        """uint8 [H, W, 3]: every pair's x0_hat at ``step`` (None: the final samples)."""
        g = self.g
        k = -1 if step is None else int(step)
        canvas = np.empty((self.height, self.width, 3), np.uint8)
        canvas[:] = BACKGROUND
        for r in range(len(g.labels)):
            y = self._y(r)
            for c in range(len(g.seeds)):
                x = self._x(c)
                for dy, src in ((0, g.cnn_x0), (self.cell_h + self.gap, g.machine_x0)):
                    img = enlarge(render.image_rgb(src[r, c, k]), self.scale)
                    canvas[y + dy : y + dy + self.cell_h, x : x + self.cell_w] = img
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        where = "final samples" if step is None else f"step {k % g.steps + 1}/{g.steps}"
        title = f"{self.title} · {where}"
        draw.text(
            (self.margin, self.margin + self.line // 2),
            title,
            font=_fitted(title, self.width - 2 * self.margin, self.font.size),
            fill=FOREGROUND,
            anchor="lm",
        )
        for c, seed in enumerate(g.seeds):
            text = f"seed {seed}"
            draw.text(
                (self._x(c) + self.cell_w // 2, self.margin + 3 * self.line // 2),
                text,
                font=_fitted(text, self.cell_w, self.font.size),
                fill=DIM,
                anchor="mm",
            )
        for r, name in enumerate(g.names):
            y = self._y(r)
            left = self.margin
            mid = y + self.cell_h // 2
            draw.text((left, mid - 2), name, font=self.font, fill=FOREGROUND, anchor="ld")
            draw.text((left, mid + 2), "CNN", font=self.font, fill=DIM, anchor="lt")
            my = y + self.cell_h + self.gap + self.cell_h // 2
            draw.text((left, my), self.machine_title, font=self.font, fill=DIM, anchor="lm")
            cy = y + 2 * self.cell_h + self.gap + self.line // 2
            for c in range(len(g.seeds)):
                v = g.correlation[r, c]
                text = "r = n/a" if not np.isfinite(v) else f"r = {v:.2f}"
                draw.text(
                    (self._x(c) + self.cell_w // 2, cy),
                    text,
                    font=_fitted(text, self.cell_w, self.font.size),
                    fill=DIM,
                    anchor="mm",
                )
        return np.asarray(image).copy()


def export_seed_grid(
    g: SeedGrid,
    png: str | os.PathLike | None = None,
    video: str | os.PathLike | None = None,
    *,
    scale: int = 3,
    fps: float = 4.0,
    hold_last: float = 2.0,
    quality: int | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> list[Path]:
    """Write the grid's final samples to ``png`` and its steps to ``video`` (.mp4, .gif
    or .webm); returns the paths written."""
    check_outputs(png, video, overwrite)
    try:
        comp = GridComposer(g, scale)
    except ValueError as e:
        raise WriteError(str(e)) from None
    view = {"scale": comp.scale, "fps": float(fps), "hold_last": float(hold_last)}
    record = grid_record(g, view)
    written = []
    # The video first: it is the long part, and the one a user cancels.
    if video is not None:
        frames = (comp.frame(i) for i in range(g.steps))
        _write_video(
            video,
            frames,
            g.steps,
            fps,
            quality,
            hold_last,
            None,
            overwrite,
            {**record, "title": f"ccdm-gui: {comp.title}"},
            on_progress,
            should_cancel,
        )
        written.append(Path(video))
    if png is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"ccdm-gui {__version__}")
        info.add_text("Comment", to_json(record))
        final = Image.fromarray(comp.frame(None))
        with atomic_file(png, overwrite) as f:
            final.save(f, format="PNG", pnginfo=info)
        written.append(Path(png))
    return written
