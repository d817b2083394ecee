"""The compiled fold (foldc.c) against numba's tile pass, alternating in one process.

    .venv/bin/python bench/native_ab.py                   # random data, P = 3 5 7 11 15
    .venv/bin/python bench/native_ab.py --data mnist --p 3 5

For each machine and patch size, the step of bench/machines.py (N = 1,000, t = 0.5)
runs on the compiled fold and on numba's route (numba's pass after torch's product),
each forced for every patch length through routes.override, alternately, best of
--repeat each; the first round is a warm-up. The ratio numba / kernel above 1 means the
kernel is faster; where it is below 1 the machines route those patches to numba
(routes.FOLD_MAX_NUMBERS).
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

from ccdm_gui.core.machines import machine_denoise, native, routes  # noqa: E402
from ccdm_gui.core.schedule import abar as abar_of  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=("random", "mnist"), default="random")
    ap.add_argument("--p", type=int, nargs="+", default=[3, 5, 7, 11, 15])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not native.available():
        raise SystemExit(f"the compiled fold is off: {native.reason}")
    torch.set_num_threads(args.threads)
    ab = float(abar_of(torch.tensor(0.5)))
    train, clean = dataset(args.data, 1000)
    g = torch.Generator().manual_seed(1)
    x = math.sqrt(ab) * clean + math.sqrt(1 - ab) * torch.randn(1, 1, 32, 32, generator=g)
    kernel = native.isa_name(native.best_isa())
    print(f"{args.data} data, N = 1000, t = 0.5, {args.threads} threads, kernel {kernel}")
    print(f"{'machine':14s}{'P':>3s}{'kernel s':>10s}{'numba s':>9s}{'numba/kernel':>14s}")
    for machine, boundary in (("els", "circular"), ("bbels", "zeros")):
        for p in args.p:
            best = {True: math.inf, False: math.inf}
            for rep in range(args.repeat + 1):
                for on in (True, False):
                    with routes.override("fold" if on else "numba"):
                        t0 = time.perf_counter()
                        machine_denoise(x, ab, train, machine, p, boundary)
                    if rep:
                        best[on] = min(best[on], time.perf_counter() - t0)
            ratio = best[False] / best[True]
            print(f"{machine:14s}{p:>3d}{best[True]:>10.3f}{best[False]:>9.3f}{ratio:>14.2f}")


if __name__ == "__main__":
    main()
