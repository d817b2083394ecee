"""Where a machine step's time goes, beside the bound in bench/machines.py.

    .venv/bin/python bench/tile_parts.py --threads 2

Three parts (or, with --tile-sizes 18 19, the eight steps at each tile size), each
measured in this process on the benchmark's data (N = 1,000 random
32x32 images, t = 0.5):
- per problem of bbELS (interior, edge strips, corners): seconds of one step;
- the logits product at the shapes the machines use (queries x (D + 2) x tile keys,
  keys read from a strided bank) against one 2048x2048 product, in GFLOP/s;
- the row maximum and the exp the tile pass needs: torch's amax and exp, numba's own
  float max, the pass's integer max and its 2^x, in elements per second on one tile.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.machines import api, fused  # noqa: E402
from ccdm_gui.core.machines.streaming import TILE_ALIGN, TILE_ELEMENTS  # noqa: E402
from ccdm_gui.core.schedule import abar as abar_of  # noqa: E402


def best_of(fn, repeat: int = 5) -> float:
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def problems(train, x, ab, p: int) -> None:
    """Seconds per bbELS problem: one step run with only that problem (best of 3)."""
    every = api.build_problems
    parts = []
    try:
        for layout in ("valid", "rows", "cols", "each"):
            api.build_problems = lambda *a, layout=layout, **k: [
                pr for pr in every(*a, **k) if pr.layout == layout
            ]
            best = best_of(lambda: api.machine_denoise(x, ab, train, "bbels", p, "zeros"), 3)
            parts.append(f"{layout} {best:.3f} s")
    finally:
        api.build_problems = every
    print(f"bbELS P = {p:2d}: " + ", ".join(parts) + " (rows, cols: both strips)")


def products() -> None:
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    big = 2 * n**3 / best_of(lambda: a @ b) / 1e9
    print(f"2048x2048 product: {big:.0f} GFLOP/s")
    tile = TILE_ELEMENTS * torch.get_num_threads()
    shapes = [("ELS", 1024, 3), ("ELS", 1024, 7), ("ELS", 1024, 15)]
    shapes += [("bbELS", 900, 3), ("bbELS", 676, 7)]
    for name, m, p in shapes:
        k = p * p + 2
        rates = []
        # The width streaming uses (a multiple of TILE_ALIGN) and, for bbELS, the
        # unaligned width it used before, alternately.
        widths = [tile // m - (tile // m) % TILE_ALIGN]
        if tile // m != widths[0]:
            widths.append(tile // m)
        for t in widths:
            q = torch.randn(1, m, k)
            bank = torch.randn(1, k + 3, 200 * t)
            tiles = bank[:, :k].split(t, -1)
            out = torch.empty(1, m, t)

            def run(q=q, tiles=tiles, out=out):
                for kt in tiles:
                    torch.bmm(q, kt, out=out)

            rate = 2 * m * k * t * len(tiles) / best_of(run, 3) / 1e9
            rates.append(f"{m} x {k} x {t}: {rate:.0f} GFLOP/s")
        print(f"  {name} P = {p:2d} tile " + ", unaligned ".join(rates))


def tile_sizes(train, x, ab, exponents: list[int], rounds: int = 5) -> None:
    """Seconds of each benchmark step with streaming.TILE_ELEMENTS = 2^e per thread, the
    sizes alternating within each round (best of ``rounds``), and their sums."""
    from ccdm_gui.core.machines import streaming

    keep = streaming.TILE_ELEMENTS
    machines = (("els", "circular"), ("bbels", "zeros"))
    cases = [(m, b, p) for m, b in machines for p in (3, 7, 11, 15)]
    total = dict.fromkeys(exponents, 0.0)
    try:
        for machine, boundary, p in cases:
            best = dict.fromkeys(exponents, math.inf)
            api.machine_denoise(x, ab, train, machine, p, boundary)
            for _ in range(rounds):
                for e in exponents:
                    streaming.TILE_ELEMENTS = 1 << e
                    t0 = time.perf_counter()
                    api.machine_denoise(x, ab, train, machine, p, boundary)
                    best[e] = min(best[e], time.perf_counter() - t0)
            for e in exponents:
                total[e] += best[e]
            times = ", ".join(f"2^{e}: {best[e]:.3f} s" for e in exponents)
            print(f"  {machine} P = {p:2d} tile elements per thread {times}")
    finally:
        streaming.TILE_ELEMENTS = keep
    print("  sum " + ", ".join(f"2^{e}: {total[e]:.2f} s" for e in exponents))


def row_passes() -> None:
    rows = np.random.default_rng(0).uniform(-30, 0, (1024, 512)).astype(np.float32)
    rt = torch.from_numpy(rows)
    out = torch.empty_like(rt)
    n = rows.size
    print(f"one 1024 x 512 tile, {torch.get_num_threads()} torch threads:")
    print(f"  torch amax {n / best_of(lambda: rt.amax(-1), 20) / 1e9:.2f} G/s")
    print(f"  torch exp  {n / best_of(lambda: torch.exp(rt, out=out), 20) / 1e9:.2f} G/s")
    if not fused.available():
        print(f"  compiled pass off: {fused.reason}")
        return
    from numba import njit

    @njit(fastmath={"reassoc", "contract", "nsz", "arcp", "afn", "nnan", "ninf"})
    def numba_max(a, res):
        for r in range(a.shape[0]):
            m = a[r, 0]
            for t in range(a.shape[1]):
                m = a[r, t] if a[r, t] > m else m
            res[r] = m

    @njit
    def int_max(a, res):
        for r in range(a.shape[0]):
            res[r] = fused._row_max(a[r])

    @njit(fastmath={"reassoc", "contract", "nsz", "arcp", "afn"})
    def numba_exp2(a, res):
        for r in range(a.shape[0]):
            for t in range(a.shape[1]):
                res[r, t] = fused.exp2(a[r, t])

    mx, ex = np.empty(rows.shape[0], np.float32), np.empty_like(rows)
    rate = n / best_of(lambda: numba_max(rows, mx), 20) / 1e9
    print(f"  numba float max (one thread) {rate:.2f} G/s")
    rate = n / best_of(lambda: int_max(rows, mx), 20) / 1e9
    print(f"  the pass's integer max, fused._row_max (one thread) {rate:.2f} G/s")
    print(f"  numba 2^x (one thread) {n / best_of(lambda: numba_exp2(rows, ex), 20) / 1e9:.2f} G/s")
    torch.set_num_threads(1)
    print(
        f"  torch exp (one thread) {n / best_of(lambda: torch.exp(rt, out=out), 20) / 1e9:.2f} G/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument(
        "--tile-sizes",
        type=int,
        nargs="+",
        metavar="E",
        help="only time the eight benchmark steps with 2^E logits per tile and thread",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ab = abar_of(0.5)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(1000, 1, 32, 32, generator=g) * 2 - 1
    x = math.sqrt(ab) * (torch.rand(1, 1, 32, 32, generator=g) * 2 - 1)
    x = x + math.sqrt(1 - ab) * torch.randn(1, 1, 32, 32, generator=g)
    if args.tile_sizes:
        tile_sizes(train, x, ab, args.tile_sizes)
        return
    for p in (3, 7, 15):
        problems(train, x, ab, p)
    products()
    row_passes()


if __name__ == "__main__":
    main()
