"""How much an exact skip could leave out, and how much a cheap bound finds, per step of
the bbELS trajectory (interior pixels, the merged candidates the compiled fold streams).

    .venv/bin/python bench/skip_share.py --sizes 1000 5000

A candidate may be skipped exactly when its logit lies more than Delta = ln(K) + 12.2
nats below the pixel's best (K = N * Kp candidates): everything so skipped holds under
e^-12.2 = 5e-6 of the weight, which moves x0 (values in [-1, 1]) by under 1e-5. In
distances, logit = -||k - y||^2 / T with y = x_t / sqrt(abar) and T = 2 (1 - abar) /
abar, so k may go where ||k - y||^2 > D* + T Delta (D* the pixel's nearest). Printed per
step: the share of (pixel, distinct window) pairs past that line ("exact": what any
exact skip could leave out), the share a per-window mean bound proves past it
(||k - y||^2 >= P^2 (mean k - mean y)^2, "mean"), and the share of blocks of 64
windows sorted by mean it proves past it ("blocks": what a block skip in the kernel
would leave out), and the share of (block of 32 queries, block of 64 windows) pairs a
per-number box bound proves past it for every query of the block, both ordered along a
Morton curve of their first four principal components ("box": what the compiled fold,
which takes 32 queries at a time, could skip). The trajectory is the machine's on the
first 1,000 images; steps with t above --max-t are left out (nothing lies past the line
there).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.machines import machine_denoise  # noqa: E402
from ccdm_gui.core.pipeline import load_model, load_training_images, patch_schedule  # noqa: E402
from ccdm_gui.core.resources import default_dataset_path, default_model_path  # noqa: E402
from ccdm_gui.core.sampler import ddim_step, initial_noise  # noqa: E402
from ccdm_gui.core.schedule import LEGACY_COSINE, abar, time_grid  # noqa: E402
from ccdm_gui.core.spec import RunSpec  # noqa: E402

_KEYS = 1 << 17  # windows per product
_MORTON_BITS = 15


def shares(train: torch.Tensor, x: torch.Tensor, t: float, p: int) -> tuple[float, ...]:
    win = torch.nn.functional.unfold(train, p).transpose(1, 2).reshape(-1, p * p).double()
    keys = torch.unique(win, dim=0)
    ab = abar(t)
    temp = 2 * (1 - ab) / ab
    delta = math.log(win.shape[0]) + 12.2
    y = torch.nn.functional.unfold(x.double(), p)[0].T / math.sqrt(ab)  # interior queries
    kn, yn = (keys * keys).sum(1), (y * y).sum(1)

    def dist(s: int) -> torch.Tensor:
        return yn[:, None] - 2 * y @ keys[s : s + _KEYS].T + kn[None, s : s + _KEYS]

    best = torch.stack([dist(s).min(1).values for s in range(0, len(keys), _KEYS)]).min(0)
    line = best.values + temp * delta
    past = sum(int((dist(s) > line[:, None]).sum()) for s in range(0, len(keys), _KEYS))
    mk, my = keys.mean(1), y.mean(1)
    bound = sum(
        int((p * p * (mk[None, s : s + _KEYS] - my[:, None]) ** 2 > line[:, None]).sum())
        for s in range(0, len(keys), _KEYS)
    )
    ms = torch.sort(mk).values
    nb = -(-len(ms) // 64)
    ms = torch.cat([ms, ms[-1:].expand(nb * 64 - len(ms))]).view(nb, 64)
    gap = (ms[None, :, 0] - my[:, None]).clamp(min=0) + (my[:, None] - ms[None, :, -1]).clamp(min=0)
    blocks = int((p * p * gap**2 > line[:, None]).sum())
    pairs = y.shape[0] * len(keys)
    box = _box_share(keys, y, line)
    return len(keys) / win.shape[0], past / pairs, bound / pairs, blocks / (y.shape[0] * nb), box


def _morton_order(points: torch.Tensor, axes: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Indices ordering ``points`` along a Morton (Z) curve of their coordinates on
    ``axes``, each cut into 2^15 levels: near points mostly land in the same blocks."""
    z = (points - mean) @ axes
    lo, hi = z.min(0).values, z.max(0).values
    q = ((z - lo) / (hi - lo + 1e-12) * ((1 << _MORTON_BITS) - 1)).round().long()
    code = torch.zeros(len(points), dtype=torch.long)
    for bit in range(_MORTON_BITS - 1, -1, -1):
        for k in range(axes.shape[1]):
            code = (code << 1) | ((q[:, k] >> bit) & 1)
    return torch.argsort(code)


def _box_share(keys: torch.Tensor, y: torch.Tensor, line: torch.Tensor) -> float:
    """Share of (32 queries, 64 windows) block pairs where every query's distance to the
    block's per-number box exceeds its line: a bound no window of the box can beat."""
    mean = keys.mean(0)
    cov = (keys - mean).T @ (keys - mean)
    axes = torch.linalg.eigh(cov).eigenvectors.flip(1)[:, :4]
    ko = keys[_morton_order(keys, axes, mean)]
    qo = _morton_order(y, axes, mean)
    yq, lq = y[qo], line[qo]
    nb = len(ko) // 64
    blocks = ko[: nb * 64].view(nb, 64, -1)
    lo, hi = blocks.min(1).values, blocks.max(1).values
    skipped = total = 0
    for q0 in range(0, len(yq) - 31, 32):
        near = yq[q0 : q0 + 32, None, :].clamp(lo[None], hi[None])
        gap = ((yq[q0 : q0 + 32, None, :] - near) ** 2).sum(-1)  # [32, nb]
        skipped += int((gap > lq[q0 : q0 + 32, None]).all(0).sum())
        total += nb
    return skipped / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-t", type=float, default=0.65)
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
    ps = patch_schedule(spec, info, LEGACY_COSINE)  # the shipped ccdm models' schedule
    grid = time_grid(args.steps) + [0.0]
    x = initial_noise((1, 1, 32, 32), 0)
    print("| t | P | N | distinct share | exact | mean | blocks | box |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for i in range(args.steps):
        t, p = grid[i], int(ps[i])
        if t <= args.max_t:
            for n in args.sizes:
                row = shares(full[:n], x, t, p)
                print(
                    f"| {t:.2f} | {p} | {n:,} | " + " | ".join(f"{s:.3f}" for s in row) + " |",
                    flush=True,
                )
        out = machine_denoise(x, abar(t), full[:1000], "bbels", p, "zeros")
        x = ddim_step(x, out.x0, t, grid[i + 1]) if grid[i + 1] > 0 else out.x0


if __name__ == "__main__":
    main()
