"""The window-sum route (windowsums.py) against the streamed route it replaces for long
patches, alternately in this process, on the benchmark's data (bench/machines.py).

    .venv/bin/python bench/windowsums.py [--data random mnist] [--p 5 7 9 11 15] [--rounds 3]

For each machine (ELS circular, bbELS) and patch size: the best step of each route
over the rounds (one step of each per round, in turn), their ratio (streamed / window
sums: above 1, window sums are faster) and the largest difference of x0 between them.
routes.WINDOW_SUMS_MIN_NUMBERS is the shortest patch (C * P * P) from which the ratio
stays above 1. Both sides are forced through routes.override: the window sums on every
P, against the automatic choice without them (fold, numba, torch).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machines import dataset  # noqa: E402

from ccdm_gui.core.machines import machine_denoise, routes  # noqa: E402
from ccdm_gui.core.schedule import abar as abar_of  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", choices=["random", "mnist"], default=["random", "mnist"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--p", type=int, nargs="+", default=[5, 7, 9, 11, 15])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ab = abar_of(0.5)
    print(f"threads {torch.get_num_threads()}  N = {args.n}  t = 0.5  rounds {args.rounds}")
    for data in args.data:
        train, clean = dataset(data, args.n)
        noise = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
        x = math.sqrt(ab) * clean + math.sqrt(1 - ab) * noise
        print(f"\n{data}: {'machine':<14}{'P':>3}{'streamed s':>12}{'window s':>10}{'ratio':>7}"
              f"{'max|dx0|':>10}")  # fmt: skip
        for machine, boundary in (("els", "circular"), ("bbels", "zeros")):
            for p in args.p:
                best = {True: math.inf, False: math.inf}
                outs = {}
                for rnd in range(args.rounds + 1):  # round 0 warms both up
                    for on in (True, False):
                        # Forced on every P; off: the automatic choice without them.
                        allowed = ("window-sums",) if on else ("fold", "numba", "torch")
                        with routes.override(*allowed):
                            t0 = time.perf_counter()
                            outs[on] = machine_denoise(x, ab, train, machine, p, boundary).x0
                            secs = time.perf_counter() - t0
                        if rnd:
                            best[on] = min(best[on], secs)
                diff = (outs[True] - outs[False]).abs().max().item()
                print(f"{'':8}{machine:<14}{p:>3}{best[False]:>12.3f}{best[True]:>10.3f}"
                      f"{best[False] / best[True]:>7.2f}{diff:>10.1e}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
