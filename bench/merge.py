"""The patch merge's first call per patch size (what a new P costs the app before its
first step), against the hashing it replaced, alternately in this process.

    .venv/bin/python bench/merge.py [--data mnist] [--n 1000] [--p 3 5 7 9 11] [--rounds 5]

Baseline: every window unfolded and projected by a dense random vector (the hash of
ccdm-gui up to 2026-11-29); now: dedup._hashes, a separable projection as shifted sums
over whole images. Prints both hashing times, the whole merge (hash, grouping and the
check of every window against its group) and whether merging paid (its fraction of
distinct windows).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machines import dataset  # noqa: E402
from tile_parts import best_of  # noqa: E402

from ccdm_gui.core.machines import dedup  # noqa: E402


def dense_hashes(train: torch.Tensor, p: int) -> torch.Tensor:
    proj = torch.randn(train.shape[1] * p * p, dtype=torch.float64)
    step = max(1, dedup._HASH_CHUNK_ELEMENTS // (proj.numel() * (train.shape[2] - p + 1) ** 2))
    parts = [
        dedup._windows(train[i : i + step], p).double() @ proj for i in range(0, len(train), step)
    ]
    return torch.cat(parts)


def separable_hashes(train: torch.Tensor, p: int) -> torch.Tensor:
    across = torch.randn(p, dtype=torch.float64).tolist()
    down = torch.randn(train.shape[1], p, dtype=torch.float64).tolist()
    return dedup._hashes(train, across, down)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("random", "mnist"), default="mnist")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--p", type=int, nargs="+", default=[3, 5, 7, 9, 11])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, _ = dataset(args.data, args.n)
    print(f"{args.data}, N = {args.n}, best of {args.rounds}, {args.threads} threads")
    print(f"{'P':>3} {'dense hash s':>13} {'separable s':>12} {'ratio':>6} {'merge s':>8}  merged")
    for p in args.p:
        dense = sep = math.inf
        for _ in range(args.rounds):  # alternately: the machine drifts by the minute
            dense = min(dense, best_of(lambda p=p: dense_hashes(train, p), 1))
            sep = min(sep, best_of(lambda p=p: separable_hashes(train, p), 1))
        found = dedup._merge(train, p)
        merge = best_of(lambda p=p: dedup._merge(train, p), args.rounds)
        total = args.n * (train.shape[2] - p + 1) * (train.shape[3] - p + 1)
        kept = (
            "no (over 75% distinct)"
            if found is None
            else f"{found.keys.shape[1] / total:.0%} distinct"
        )
        print(f"{p:>3} {dense:13.3f} {sep:12.3f} {dense / sep:6.1f} {merge:8.3f}  {kept}")


if __name__ == "__main__":
    main()
