"""Every step of saved comparisons as one strip: the CNN's x0_hat, the machine's x0_hat
and the provenance panel (the patch mosaic unless told otherwise), one column per step,
noisiest on the left, with t over each column. Further trajectories of the same seed
(another machine, boundary or P) add their machine and provenance rows below.

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

GAP, HEAD, LEFT = 2, 14, 84


def _rows(comps):
    """(name, comparison, panel) per row: the first run's CNN, then each run's machine
    and provenance."""
    rows = [("CNN", comps[0], "cnn")]
    for comp in comps:
        p = np.unique(np.asarray(comp.machine.patch_size))
        name = render.machine_name(comp) + (f" P={p[0]}" if len(p) == 1 else " P(t)")
        rows += [(name, comp, "machine"), ("mosaic", comp, "provenance")]
    return rows


def strip(comps, mode: str, scale: int) -> Image.Image:
    n = len(comps[0].cnn.t)
    rows = _rows(comps)
    h, w = comps[0].cnn.x0.shape[-2:]
    cw, ch = w * scale, h * scale
    out = Image.new("RGB", (LEFT + n * (cw + GAP), HEAD + len(rows) * (ch + GAP)), (28, 28, 30))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    view = View(prov_mode=mode)
    for step in range(n):
        x = LEFT + step * (cw + GAP)
        draw.text((x + 2, 1), f"t={comps[0].cnn.t[step]:.2f}", fill=(220, 220, 220), font=font)
        panels = {id(c): render.panel_images(c, step, view) for c in comps}
        for i, (_, comp, panel) in enumerate(rows):
            img = panels[id(comp)][panel]
            big = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
            out.paste(Image.fromarray(big), (x, HEAD + i * (ch + GAP)))
    for i, (name, _, _) in enumerate(rows):
        draw.text((4, HEAD + i * (ch + GAP) + ch // 2 - 6), name, fill=(220, 220, 220))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "trajectories", nargs="+", metavar="trajectory", help="trajectory.npz from ccdm run"
    )
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--mode", default=DEFAULT_VIEW.prov_mode, choices=provenance.KEYS)
    ap.add_argument("--scale", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        comps = [load_comparison(p) for p in args.trajectories]
    except ValueError as e:
        print(f"frame_strip: {e}", file=sys.stderr)
        return 2
    if len({len(c.cnn.t) for c in comps}) > 1:
        print("frame_strip: the trajectories have different numbers of steps", file=sys.stderr)
        return 2
    strip(comps, args.mode, args.scale).save(args.out)
    print(f"frame_strip: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
