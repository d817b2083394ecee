"""Per step of the bbELS trajectory: the share of an interior pixel's candidates whose
logit lies within Delta = ln(K) + 12.2 nats of its best (K = N * Kp candidates). No exact
skip may leave those out; leaving out all the others moves x0 by under 1e-5. Sampled
interior pixels, logits in float64 by plain products; the trajectory is the N = 1,000 one.

    .venv/bin/python bench/skip_share.py --sizes 1000 10000 --pixels 24
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.machines import machine_denoise  # noqa: E402
from ccdm_gui.core.machines.dedup import _windows  # noqa: E402
from ccdm_gui.core.pipeline import load_model, load_training_images, patch_schedule  # noqa: E402
from ccdm_gui.core.resources import default_dataset_path, default_model_path  # noqa: E402
from ccdm_gui.core.sampler import ddim_step, initial_noise  # noqa: E402
from ccdm_gui.core.schedule import abar, time_grid  # noqa: E402
from ccdm_gui.core.spec import RunSpec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--pixels", type=int, default=24)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = RunSpec(
        model=str(default_model_path()),
        dataset=str(default_dataset_path()),
        subset=max(args.sizes),
        seed=0,
        steps=args.steps,
        machine="bbels",
    )
    info = load_model(spec.model, "cpu").info
    full = load_training_images(spec, info).images
    ps = patch_schedule(spec, info)
    grid = time_grid(args.steps) + [0.0]
    x = initial_noise((1, 1, 32, 32), 0)
    xs = []
    for i in range(args.steps):
        xs.append(x)
        out = machine_denoise(x, abar(grid[i]), full[:1000], "bbels", int(ps[i]), "zeros")
        x = ddim_step(x, out.x0, grid[i], grid[i + 1]) if grid[i + 1] > 0 else out.x0
    g = torch.Generator().manual_seed(0)
    for i in range(args.steps):
        t, p = grid[i], int(ps[i])
        d = p // 2
        a, v = math.sqrt(abar(t)), 1 - abar(t)
        rows = torch.randint(d, 32 - d, (args.pixels,), generator=g).tolist()
        cols = torch.randint(d, 32 - d, (args.pixels,), generator=g).tolist()
        q = torch.stack(
            [
                xs[i][0, 0, r - d : r + d + 1, c - d : c + d + 1].reshape(-1)
                for r, c in zip(rows, cols, strict=True)
            ]
        ).double()
        line = [f"t={t:.2f} P={p:2d}"]
        for n in args.sizes:
            parts = []
            for j in range(0, n, 500):
                w = _windows(full[j : min(n, j + 500)], p).double()
                parts.append((a * q @ w.T - 0.5 * a * a * (w * w).sum(1)) / v)
            logits = torch.cat(parts, 1)
            delta = math.log(logits.shape[1]) + 12.2
            best = logits.max(1, keepdim=True).values
            within = (logits >= best - delta).double().mean(1)
            line.append(f"N={n}: {within.mean():.4f} (min {within.min():.4f})")
        print("  ".join(line), flush=True)


if __name__ == "__main__":
    main()
