"""How long the inspector takes for one pixel: machines.top_candidates against cutting
every candidate patch and taking its logit by a product (what it did before), in the
same process, on the first N MNIST images.

    .venv/bin/python bench/inspect_pixel.py                    # N = 60,000, P = 9 5 3
    .venv/bin/python bench/inspect_pixel.py --n 10000 --p 5

Both give the same top candidates (checked here: identical indices where the weights
are clearly apart, weights within 1e-5).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.datasets import load_dataset  # noqa: E402
from ccdm_gui.core.machines import api, top_candidates  # noqa: E402
from ccdm_gui.core.machines.keys import key_chunks  # noqa: E402
from ccdm_gui.core.machines.patches import gather_patches  # noqa: E402
from ccdm_gui.core.resources import default_dataset_path  # noqa: E402


def by_patches(x, ab, train, p, pixel, k):
    """The baseline: every candidate patch cut (keys.key_chunks), logits by a product."""
    prob = api._group_of("bbels", p, "zeros", 32, 32, *pixel, x.device)
    a, v = math.sqrt(ab), 1.0 - ab
    q = gather_patches(x, prob.qpos[0], p, prob.query_boundary).reshape(-1)
    logits = []
    for ch in key_chunks(train, prob, p, api._default_chunk(1, q.numel())):
        keys = ch.bank[0, : q.numel()].T
        logits.append(((a * (keys @ q) - 0.5 * a * a * (keys * keys).sum(-1)) / v).double())
    every = torch.cat(logits)
    top = torch.topk(every, k)
    weights = torch.exp(top.values - torch.logsumexp(every, 0))
    kp = prob.kpos.shape[1]
    return [(int(j) // kp, float(w)) for j, w in zip(top.indices, weights, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--p", type=int, nargs="+", default=[9, 5, 3])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = load_dataset(str(default_dataset_path()), limit=args.n).images
    x = train[7:8]  # a training image, noised: a query near the data
    ab, pixel, k = 0.5, (16, 15), 8
    x = math.sqrt(ab) * x + math.sqrt(1 - ab) * torch.randn(
        x.shape, generator=torch.Generator().manual_seed(0)
    )
    print(f"N = {args.n:,}, bbELS, pixel {pixel}, abar = {ab}, {args.threads} threads")
    print(f"{'P':>3} {'patches s':>10} {'inspector s':>12} {'ratio':>6}")
    for p in args.p:
        t0 = time.perf_counter()
        want = by_patches(x, ab, train, p, pixel, k)
        t1 = time.perf_counter()
        got = top_candidates(x, ab, train, "bbels", p, "zeros", pixel=pixel, k=k)
        t2 = time.perf_counter()
        for (gi, _, gw), (wi, ww) in zip(got, want, strict=True):
            assert abs(gw - ww) < 1e-5 and (gi == wi or gw < 1e-3), (p, gi, wi, gw, ww)
        print(f"{p:>3} {t1 - t0:>10.2f} {t2 - t1:>12.2f} {(t1 - t0) / (t2 - t1):>6.1f}")


if __name__ == "__main__":
    main()
