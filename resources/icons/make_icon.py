"""Draw the app icon: a hand-made "patch mosaic", the picture the app explains.

A digit-like stroke is built from square patches, each coloured as its own source
training image would be in the provenance panel. Run from the repository root:
    .venv/bin/python resources/icons/make_icon.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ccdm_gui.core.palette import categorical_colors

HERE = Path(__file__).resolve().parent
GRID = 8
# A "2" drawn on an 8x8 grid of patches; digits give each patch its source image.
SHAPE = [
    "..1122..",
    ".13..24.",
    "......4.",
    ".....55.",
    "....66..",
    "...77...",
    "..88....",
    ".889999.",
]


def draw(size: int) -> Image.Image:
    scale = 4  # draw large, downsample once: smooth outer corners, crisp tiles
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, s - 1, s - 1], radius=s // 6, fill=(30, 32, 38, 255))
    margin = s // 10
    cell = (s - 2 * margin) // GRID
    gap = max(1, cell // 10)
    ids = sorted({ch for row in SHAPE for ch in row if ch != "."})
    colours = categorical_colors(np.array([3 * int(i) + 5 for i in ids]))
    by_id = {i: tuple(int(v) for v in c) for i, c in zip(ids, colours, strict=True)}
    for r, row in enumerate(SHAPE):
        for c, ch in enumerate(row):
            x0, y0 = margin + c * cell, margin + r * cell
            box = [x0 + gap, y0 + gap, x0 + cell - gap, y0 + cell - gap]
            if ch == ".":
                d.rectangle(box, fill=(48, 51, 58, 255))
            else:
                d.rectangle(box, fill=(*by_id[ch], 255))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    for size in (256, 64, 32):
        name = "ccdm-gui.png" if size == 256 else f"ccdm-gui-{size}.png"
        draw(size).save(HERE / name)


if __name__ == "__main__":
    main()
