"""Every step of a saved comparison as one strip: the CNN's x0_hat, the machine's x0_hat
and the provenance panel (the patch mosaic unless told otherwise), one column per step,
noisiest on the left, with t over each column.

    .venv/bin/python scripts/frame_strip.py runs/run/trajectory.npz docs/mosaic_strip.png

(``ccdm run`` writes the trajectory.) Options: --mode KEY (a provenance mode), --scale N.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ccdm_gui.core import provenance, render
from ccdm_gui.core.pipeline import load_comparison
from ccdm_gui.core.view import DEFAULT_VIEW, View

GAP, HEAD, LEFT = 2, 14, 70


def strip(comp, mode: str, scale: int) -> Image.Image:
    n = len(comp.cnn.t)
    rows = ("cnn", "machine", "provenance")
    names = {"cnn": "CNN", "machine": render.machine_name(comp), "provenance": mode}
    h, w = comp.cnn.x0.shape[-2:]
    cw, ch = w * scale, h * scale
    out = Image.new("RGB", (LEFT + n * (cw + GAP), HEAD + len(rows) * (ch + GAP)), (28, 28, 30))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    view = View(prov_mode=mode)
    for step in range(n):
        panels = render.panel_images(comp, step, view)
        x = LEFT + step * (cw + GAP)
        draw.text((x + 2, 1), f"t={comp.cnn.t[step]:.2f}", fill=(220, 220, 220), font=font)
        for i, name in enumerate(rows):
            big = np.repeat(np.repeat(panels[name], scale, axis=0), scale, axis=1)
            out.paste(Image.fromarray(big), (x, HEAD + i * (ch + GAP)))
    for i, name in enumerate(rows):
        draw.text((4, HEAD + i * (ch + GAP) + ch // 2 - 6), names[name], fill=(220, 220, 220))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trajectory", help="a trajectory.npz from ccdm run")
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--mode", default=DEFAULT_VIEW.prov_mode, choices=provenance.KEYS)
    ap.add_argument("--scale", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        comp = load_comparison(args.trajectory)
    except ValueError as e:
        print(f"frame_strip: {e}", file=sys.stderr)
        return 2
    strip(comp, args.mode, args.scale).save(args.out)
    print(f"frame_strip: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
