"""Frames for export, built from core.render's panels: enlarged with nearest-neighbour
pixels (so a 32x32 image stays crisp) and, for the composite, laid out side by side with
the same captions the app shows, a title line and colour keys."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..core import provenance, render
from ..core.datasets.known import class_names_at
from ..core.spec import Comparison
from ..core.view import DEFAULT_VIEW, View
from .formats import LAYOUTS

# Pure greys: antialiased text then blends only into greys, which the grey image panels
# use anyway, so a typical frame still fits a GIF's 256-colour palette exactly.
BACKGROUND = (28, 28, 28)
FOREGROUND = (236, 236, 236)
DIM = (160, 160, 160)


def check_frames(layout: str, scale: int) -> None:
    """How frames are drawn: a known layout and a positive integer enlargement."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {LAYOUTS}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")


def enlarge(img: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor."""
    if scale == 1:
        return img
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fitted(text: str, width: int, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest font up to ``size`` in which ``text`` fits ``width`` pixels."""
    while size > 7 and _font(size).getlength(text) > width:
        size -= 1
    return _font(size)


@dataclass(frozen=True)
class _Geometry:
    panel_w: int
    panel_h: int
    margin: int
    gap: int
    font: int
    header: int  # title line height
    caption: int  # caption line height, under each panel
    key: int  # colour key row height, under the captions
    width: int
    height: int
    n_panels: int

    def panel_x(self, k: int) -> int:
        return self.margin + k * (self.panel_w + self.gap)

    @property
    def panel_y(self) -> int:
        return self.margin + self.header


def _geometry(h: int, w: int, scale: int, n_panels: int) -> _Geometry:
    pw, ph = w * scale, h * scale
    margin = max(4, pw // 24)
    font = int(min(22, max(9, round(pw / 16))))
    line = int(math.ceil(font * 1.5))
    key = font + 6
    width = 2 * margin + n_panels * pw + (n_panels - 1) * margin
    height = margin + line + ph + line + key + margin
    # Even sizes: H.264 in yuv420p needs them, and then every format gets the same frame.
    return _Geometry(
        pw,
        ph,
        margin,
        margin,
        font,
        line,
        line,
        key,
        width + width % 2,
        height + height % 2,
        n_panels,
    )


def _draw_bar(canvas, texts, lut, x, y, w, h, lo_text, hi_text, font) -> None:
    lo_w = int(math.ceil(font.getlength(lo_text)))
    hi_w = int(math.ceil(font.getlength(hi_text)))
    pad = 4
    bar_x0 = x + lo_w + pad
    bar_x1 = x + w - hi_w - pad
    if bar_x1 - bar_x0 < 16:
        return
    ramp = lut[np.linspace(0, 255, bar_x1 - bar_x0).round().astype(np.intp)]
    bar_h = max(4, h - 8)
    by = y + (h - bar_h) // 2
    canvas[by : by + bar_h, bar_x0:bar_x1] = ramp[None, :, :]
    texts.append(((x, y + h // 2), lo_text, font, DIM, "lm"))
    texts.append(((x + w, y + h // 2), hi_text, font, DIM, "rm"))


def _draw_key(canvas, texts, key: render.Legend, x, y, w, h, font) -> None:
    if key.kind == "bar":
        _draw_bar(canvas, texts, key.colors, x, y, w, h, _num(key.vmin), _num(key.vmax), font)
    elif key.kind == "categories":
        # As many of the largest sources as fit, each a swatch and its dataset index.
        sw = max(4, h - 8)
        cx = x
        for label, rgb in key.colors:
            need = sw + 3 + int(math.ceil(font.getlength(label))) + 8
            if cx + need - 8 > x + w:
                break
            sy = y + (h - sw) // 2
            canvas[sy : sy + sw, cx : cx + sw] = rgb
            texts.append(((cx + sw + 3, y + h // 2), label, font, DIM, "lm"))
            cx += need
    elif key.kind == "plane":
        plane = np.asarray(key.colors)
        side = max(4, h - 4)
        rows = np.linspace(0, plane.shape[0] - 1, side).round().astype(np.intp)
        cols = np.linspace(0, plane.shape[1] - 1, side).round().astype(np.intp)
        sy = y + (h - side) // 2
        canvas[sy : sy + side, x : x + side] = plane[rows][:, cols]
        text = "row: red, column: blue"
        f = _fitted(text, w - side - 6, font.size)
        texts.append(((x + side + 6, y + h // 2), text, f, DIM, "lm"))


def _num(v) -> str:
    # Bar ends: "0", "1", "-1", "12.1" (an entropy limit like log 180000), never 12.1007.
    return f"{v:.0f}" if v == int(v) else f"{v:.3g}"


class Composer:
    """Renders frames of one comparison. Geometry, fonts and the entropy scale are fixed
    once per comparison, so every frame of a video has the same size and colour scale."""

    def __init__(
        self,
        comp: Comparison,
        view: View = DEFAULT_VIEW,
        scale: int = 8,
    ):
        check_frames("composite", scale)
        if not provenance.mode(view.prov_mode).available(comp.machine):
            raise ValueError(
                f"provenance {view.prov_mode!r} needs a dataset with class labels; "
                f"{comp.spec.dataset} has none"
            )
        self.comp, self.view, self.scale = comp, view, int(scale)
        self.panels = view.panels
        _, _, h, w = comp.cnn.x0.shape
        self.geometry = _geometry(h, w, self.scale, len(self.panels))
        self.steps = len(comp.cnn.t)
        self.title = render.title(comp)

    def panel_images(self, step: int) -> dict[str, np.ndarray]:
        imgs = render.panel_images(self.comp, step, self.view)
        return {k: enlarge(v, self.scale) for k, v in imgs.items()}

    def strip(self, step: int) -> np.ndarray:
        """The panels side by side, no text: for slides and for video of bare images."""
        g = self.geometry
        imgs = self.panel_images(step)
        width = len(imgs) * g.panel_w + (len(imgs) - 1) * g.gap
        out = np.empty((g.panel_h + g.panel_h % 2, width + width % 2, 3), np.uint8)
        out[:] = BACKGROUND
        for k, name in enumerate(self.panels):
            x = k * (g.panel_w + g.gap)
            out[: g.panel_h, x : x + g.panel_w] = imgs[name]
        return out

    def composite(self, step: int) -> np.ndarray:
        g = self.geometry
        canvas = np.empty((g.height, g.width, 3), np.uint8)
        canvas[:] = BACKGROUND
        imgs = self.panel_images(step)
        for k, name in enumerate(self.panels):
            x = g.panel_x(k)
            canvas[g.panel_y : g.panel_y + g.panel_h, x : x + g.panel_w] = imgs[name]
        keys = {
            "provenance": render.legend(
                self.view.prov_mode,
                self.comp.machine,
                step,
                machine=self.comp.spec.machine,
                class_names=class_names_at(self.comp.spec.dataset),
            ),
        }
        if self.view.diff:
            keys["difference"] = render.legend("difference")
        font = _font(g.font)
        key_y = g.panel_y + g.panel_h + g.caption
        # Keys paint swatches into the array and queue their labels: fromarray copies,
        # so all pixel work must be done before the text goes on.
        texts: list = []
        for k, name in enumerate(self.panels):
            if name in keys:
                _draw_key(canvas, texts, keys[name], g.panel_x(k), key_y, g.panel_w, g.key, font)
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        for xy, text, f, fill, anchor in texts:
            draw.text(xy, text, font=f, fill=fill, anchor=anchor)
        step_text = f"step {step + 1}/{self.steps}"
        step_w = int(math.ceil(font.getlength(step_text)))
        title_w = g.width - 2 * g.margin - step_w - g.margin
        draw.text(
            (g.margin, g.margin + g.header // 2),
            self.title,
            font=_fitted(self.title, title_w, g.font),
            fill=FOREGROUND,
            anchor="lm",
        )
        draw.text(
            (g.width - g.margin, g.margin + g.header // 2),
            step_text,
            font=font,
            fill=DIM,
            anchor="rm",
        )
        cap_y = g.panel_y + g.panel_h + g.caption // 2
        for k, name in enumerate(self.panels):
            text = render.caption(self.comp, step, name, self.view)
            draw.text(
                (g.panel_x(k) + g.panel_w // 2, cap_y),
                text,
                font=_fitted(text, g.panel_w, g.font),
                fill=FOREGROUND,
                anchor="mm",
            )
        return np.asarray(image).copy()

    def frame(self, step: int, layout: str):
        if layout == "composite":
            return self.composite(step)
        if layout == "strip":
            return self.strip(step)
        if layout == "panels":
            return self.panel_images(step)
        raise ValueError(f"unknown layout {layout!r}; known: {LAYOUTS}")


def iter_frames(
    comp: Comparison, view: View = DEFAULT_VIEW, layout: str = "composite", scale: int = 8
) -> Iterator:
    check_frames(layout, scale)
    c = Composer(comp, view, scale)
    for step in range(c.steps):
        yield c.frame(step, layout)


def render_frames(
    comp: Comparison, view: View = DEFAULT_VIEW, layout: str = "composite", scale: int = 8
) -> list:
    """Every step's frame, exactly what export writes.

    layout "composite": a list of uint8 [H, W, 3] (panels, captions, title, colour keys);
    "strip": a list of uint8 [H, W, 3] (panels side by side, no text);
    "panels": a list of dicts panel name -> uint8 [h*scale, w*scale, 3], with keys
    ``view.panels``.
    """
    return list(iter_frames(comp, view, layout, scale))


def grid(frames: list[np.ndarray], columns: int | None = None, gap: int = 8) -> np.ndarray:
    """Tile same-purpose frames (one per seed) into one picture, row-major, with even
    dimensions. Frames of different sizes are top-left aligned in equal cells."""
    n = len(frames)
    if n == 0:
        raise ValueError("grid needs at least one frame")
    cols = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    ch = max(f.shape[0] for f in frames)
    cw = max(f.shape[1] for f in frames)
    height = rows * ch + (rows - 1) * gap
    width = cols * cw + (cols - 1) * gap
    out = np.empty((height + height % 2, width + width % 2, 3), np.uint8)
    out[:] = BACKGROUND
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        y, x = r * (ch + gap), c * (cw + gap)
        out[y : y + f.shape[0], x : x + f.shape[1]] = f
    return out
