"""A/B speed of one machine step between this working tree and an earlier revision.

The virtual machines this project is measured on drift by 20-40% from hour to hour, so
two benchmark runs an hour apart compare the hours, not the code. This checks the base
revision out into a temporary git worktree (building its compiled fold, if it has one),
runs both trees alternately, each round in a fresh process, and reports each tree's best
time per P and their ratio.

    .venv/bin/python bench/revisions.py --base HEAD~1 --machine bbels --p 3 7 11 15
    .venv/bin/python bench/revisions.py --base HEAD~1 --machine els bbels --data mnist

"random": N uniform images in [-1, 1], a Gaussian noisy image, abar = 0.5; "mnist": the
first N images of the shipped MNIST, the next one noised to abar = 0.5 (its repeated
background patches take the duplicate merge).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(tree: str, machines: list[str], ps: list[int], n: int, threads: int, repeat: int, data):
    sys.path.insert(0, tree)
    import torch

    from ccdm_gui.core.machines import machine_denoise

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    if data == "mnist":
        from ccdm_gui.core.datasets import load_dataset
        from ccdm_gui.core.resources import default_dataset_path

        images = load_dataset(default_dataset_path(), limit=n + 1).images
        train = images[:n].contiguous()
        x = 0.5**0.5 * images[n : n + 1] + 0.5**0.5 * torch.randn(1, 1, 32, 32, generator=g)
    else:
        train = torch.rand(n, 1, 32, 32, generator=g) * 2 - 1
        x = torch.randn(1, 1, 32, 32, generator=g)
    best = {}
    for machine in machines:
        boundary = "circular" if machine == "els" else "zeros"
        for p in ps:
            machine_denoise(x, 0.5, train, machine, p, boundary)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                machine_denoise(x, 0.5, train, machine, p, boundary)
                times.append(time.perf_counter() - t0)
            best[f"{machine} {p}"] = min(times)
    print(json.dumps(best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD~1", help="git revision to compare against")
    ap.add_argument("--machine", nargs="+", default=["bbels"], choices=["els", "bbels"])
    ap.add_argument("--p", type=int, nargs="+", default=[3, 7, 11, 15])
    ap.add_argument("--n", type=int, default=1000, help="training images")
    ap.add_argument("--data", choices=["random", "mnist"], default="random")
    ap.add_argument("--rounds", type=int, default=4, help="alternating runs per tree")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls per run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.machine, args.p, args.n, args.threads, args.repeat, args.data)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.base],
            check=True,
        )
        # The base's own compiled fold, where it has one (else it would run numba's).
        if (base / "setup.py").exists():
            subprocess.run(
                [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                cwd=base, check=True, capture_output=True,
            )  # fmt: skip
        try:
            best = {"base": {}, "this": {}}
            for r in range(args.rounds):
                for name, tree in (("base", base), ("this", ROOT)):
                    cmd = [sys.executable, __file__, "--child", str(tree), "--machine"]
                    cmd += [*args.machine, "--n", str(args.n), "--repeat", str(args.repeat)]
                    cmd += ["--threads", str(args.threads), "--data", args.data]
                    cmd += ["--p", *map(str, args.p)]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    got = json.loads(out.stdout.strip().splitlines()[-1])
                    for case, t in got.items():
                        best[name][case] = min(t, best[name].get(case, float("inf")))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)])
    print(f"{args.data}, N = {args.n}, best of {args.rounds} x {args.repeat} calls")
    print(f"{'step':>9} {args.base + ' s':>12} {'this s':>8} {'base/this':>9}")
    for case in best["base"]:
        b, t = best["base"][case], best["this"][case]
        print(f"{case:>9} {b:12.3f} {t:8.3f} {b / t:9.2f}")
    bs, ts = sum(best["base"].values()), sum(best["this"].values())
    print(f"{'sum':>9} {bs:12.3f} {ts:8.3f} {bs / ts:9.2f}")


if __name__ == "__main__":
    main()
