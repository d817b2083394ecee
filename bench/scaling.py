"""How the score machine scales with the training set: time and peak memory per N.

    .venv/bin/python bench/scaling.py                          # N = 1k, 5k, 10k, 30k, 60k
    .venv/bin/python bench/scaling.py --sizes 1000 5000 --check 5000
    .venv/bin/python bench/scaling.py --data colour --sizes 50000 --steps 3

Each N runs in a fresh process (its peak resident memory is then the run's own, read
from the operating system when it ends): the shipped model's bbELS trajectory from seed
0's noise, its calibrated P(t), the first N training images (MNIST) or N random colour
images of 3 x 32 x 32 ("colour", the CIFAR shape; P(t) as for MNIST). Per step it prints
the machine's seconds and the share of the step's candidates not computed one by one:
identical patches merged into one (dedup.py; exact). With --check N the run also
recomputes every step's x0 from the same x_t with merging off, every candidate
streamed (the exhaustive route), and prints the largest difference.

Time is machine time only (loading the dataset is timed apart); the ratio column is
against the first size of the same invocation, so compare ratios, not seconds taken at
different hours (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _training(n: int, data: str):
    import torch

    from ccdm_gui.core.pipeline import load_model, load_training_images
    from ccdm_gui.core.resources import default_dataset_path, default_model_path
    from ccdm_gui.core.spec import RunSpec

    spec = RunSpec(
        model=str(default_model_path()),
        dataset=str(default_dataset_path()),
        subset=n,
        seed=0,
        steps=20,
        machine="bbels",
    )
    info = load_model(spec.model, "cpu").info
    if data == "colour":
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, spec, info
    return load_training_images(spec, info).images, spec, info


def _merged_share(train, p: int, logits: int) -> float:
    """Share of a bbELS step's logits that merging leaves out: the interior's repeated
    windows, each of which every interior query would have met."""
    from ccdm_gui.core.machines import dedup, routes

    h, w = train.shape[-2:]
    d = p // 2
    if not routes.merge_duplicates() or p * p * train.shape[1] >= routes.WINDOW_SUMS_MIN_NUMBERS:
        return 0.0
    found = dedup.unique_valid_keys(train, train, p)
    if found is None:
        return 0.0
    windows = train.shape[0] * found.keys_per_image
    return (windows - found.origin.numel()) * (h - 2 * d) * (w - 2 * d) / logits


def child(n: int, steps: int, threads: int, data: str, check: bool) -> None:
    import torch

    from ccdm_gui.core.machines import machine_denoise, routes
    from ccdm_gui.core.machines.candidates import logit_count
    from ccdm_gui.core.pipeline import patch_schedule
    from ccdm_gui.core.sampler import ddim_step, initial_noise
    from ccdm_gui.core.schedule import LEGACY_COSINE, abar, time_grid

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    train, spec, info = _training(n, data)
    load_s = time.perf_counter() - t0
    spec = spec.with_(steps=steps)
    ps = patch_schedule(spec, info, LEGACY_COSINE)  # the shipped ccdm models' schedule
    grid = time_grid(steps) + [0.0]
    c, h, w = train.shape[1:]
    x = initial_noise((1, c, h, w), 0)
    rows = []
    for i in range(steps):
        t, p = grid[i], int(ps[i])
        t1 = time.perf_counter()
        out = machine_denoise(x, abar(t), train, "bbels", p, "zeros")
        seconds = time.perf_counter() - t1
        logits = logit_count("bbels", p, "zeros", h, w, n)
        row = {"t": t, "p": p, "s": seconds, "merged": _merged_share(train, p, logits)}
        if check:
            with routes.override(merge=False):
                plain = machine_denoise(x, abar(t), train, "bbels", p, "zeros")
            row["dx0"] = float((plain.x0 - out.x0).abs().max())
        rows.append(row)
        print(json.dumps({"step": i, **row}), file=sys.stderr, flush=True)
        x = ddim_step(x, out.x0, t, grid[i + 1]) if grid[i + 1] > 0 else out.x0
    print(json.dumps({"load_s": load_s, "steps": rows}))


def run_one(n: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--steps", str(args.steps)]
    cmd += ["--threads", str(args.threads), "--data", args.data]
    if n in args.check:
        cmd.append("--check-child")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"N = {n}: the run failed (status {status})")
    result = json.loads(out)
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 30000, 60000])
    p.add_argument("--check", type=int, nargs="*", default=[5000, 60000])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", choices=("mnist", "colour"), default="mnist")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--check-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.steps, args.threads, args.data, args.check_child)
        return
    print(f"bbELS, {args.steps} steps, calibrated P(t), data {args.data}, {args.threads} threads")
    print("| N | machine s | x first | peak MB | load s | merged per step | max dx0 |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for n in args.sizes:
        r = run_one(n, args)
        total = sum(s["s"] for s in r["steps"])
        first = first or total
        merged = " ".join(f"{s['merged']:.2f}" for s in r["steps"])
        dx0 = max((s["dx0"] for s in r["steps"] if "dx0" in s), default=None)
        dx0_text = "-" if dx0 is None else f"{dx0:.1e}"
        print(
            f"| {n:,} | {total:.1f} | {total / first:.1f} | {r['peak_mb']:.0f} | "
            f"{r['load_s']:.1f} | {merged} | {dx0_text} |",
            flush=True,
        )
    print("per step (t, P):", " ".join(f"{s['t']:.2f}:{s['p']}" for s in r["steps"]))


if __name__ == "__main__":
    main()
