"""Speed of one score-machine step (ELS circular and bbELS) on MNIST-shaped data.

    .venv/bin/python bench/machines.py                       # CPU, N = 1,000
    .venv/bin/python bench/machines.py --data mnist --repeat 1
    .venv/bin/python bench/machines.py --device cuda --n 60000 --no-naive

Two training sets: "random" (uniform in [-1, 1], the benchmark's main table: no two
patches alike) and "mnist" (the first N images of the shipped MNIST, noisy image from a
held-out digit: what users run; its many identical background patches get merged).

For each machine and patch size it prints seconds per step, the achieved cross-term
GFLOP/s and exps per second, how far that is from what this machine's own matmul and
exp rates allow for the same arithmetic ("x bound": flops / matmul rate + exps / exp
rate, measured in this process at the start and after every case; the fastest reading
of the whole table counts for every row, so rows print when the table is done; "x adj"
the same against the rates read just before and just after that case, the faster of
the two, which takes out the machine's drift between cases), and
the speed-up over a straightforward
implementation (every patch unfolded, full softmax over all candidates, chunked over
queries) run in the same process on the same inputs; "route" the routes the step took
(core/machines/routes.py). ``--torch-route`` also times each step on the torch route
(what a GPU or an install without the compiled library and numba runs), alternating
with it. From routes.WINDOW_SUMS_MIN_NUMBERS on, a CPU step takes the
window-sum route, which does fewer multiply-adds per logit than the C * P * P the bound
counts (about C * P * (1 + (P - 1) / W) + 2, W the image width; see windowsums.py): x
bound below 1 there means faster than the patch dot products could be at this machine's
rates. On a CPU, "flash s" is PyTorch's
own fused flash-attention kernel on the same candidates (keys cut beforehand, the
patch-norm bias as an extra key column, values padded to the key width as the kernel
requires): the softmax-weighted centres only, no winner, no entropy, no cutting. It is
the fastest tensor-library route to the same x0, measured beside ours.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccdm_gui.core.machines import (  # noqa: E402
    dedup,
    fused,
    logit_count,
    machine_denoise,
    native,
    routes,
)
from ccdm_gui.core.machines.candidates import build_problems  # noqa: E402
from ccdm_gui.core.machines.patches import gather_patches  # noqa: E402
from ccdm_gui.core.schedule import abar as abar_of  # noqa: E402

# The paper's reference implementation on a 2-core CPU, N = 1,000 (docs/design.md).
REFERENCE_S = {
    ("els", 3): 16.0,
    ("els", 7): 13.2,
    ("els", 11): 7.1,
    ("els", 15): 5.1,
    ("bbels", 3): 10.2,
    ("bbels", 7): 8.0,
    ("bbels", 11): 7.7,
    ("bbels", 15): 1.0,
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, device: torch.device, repeat: int) -> float:
    return timed(fn, device, repeat)[0]


def timed(fn, device: torch.device, repeat: int):
    """(best seconds of ``repeat`` calls, the last call's result)."""
    best, out = math.inf, None
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def machine_rates(device: torch.device) -> tuple[float, float]:
    """(matmul GFLOP/s on a large float32 product, torch.exp elements/s on 1 Mi floats)."""
    n = 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    a @ b
    t_mm = best_time(lambda: torch.mm(a, b, out=out), device, 7)
    x = torch.rand(1 << 20, device=device) * -20
    y = torch.empty_like(x)
    torch.exp(x, out=y)
    t_exp = best_time(lambda: torch.exp(x, out=y), device, 21)
    return 2 * n**3 / t_mm / 1e9, x.numel() / t_exp


def naive_denoise(x, ab, train, machine, p, boundary, query_block=64):
    """Straightforward: cut every candidate patch, full softmax over them per pixel."""
    _, c, h, w = x.shape
    a, v = math.sqrt(ab), 1.0 - ab
    x0 = torch.empty_like(x)
    for prob in build_problems(machine, p, boundary, h, w, x.device):
        for g in range(prob.groups):
            qpos = prob.qpos[g]
            q = gather_patches(x, qpos, p, prob.query_boundary)[0]  # [Mq, D]
            if prob.keys_per_image == (h - p + 1) * (w - p + 1) and prob.groups == 1:
                keys = F.unfold(train, p).transpose(1, 2).reshape(-1, c * p * p)
            else:
                keys = gather_patches(train, prob.kpos[g], p, prob.key_boundary)
                keys = keys.reshape(-1, c * p * p)
            centre = keys.reshape(-1, c, p, p)[:, :, p // 2, p // 2]  # [K, C]
            for m0 in range(0, q.shape[0], query_block):
                qb = q[m0 : m0 + query_block]
                d2 = (qb * qb).sum(1, keepdim=True) - 2 * a * qb @ keys.T
                logits = -(d2 + a * a * (keys * keys).sum(1)) / (2 * v)
                wts = torch.softmax(logits, dim=1)
                vals = wts @ centre
                wts.max(1)  # provenance: winner and its weight
                -(wts * torch.log(wts.clamp_min(1e-38))).sum(1)  # entropy
                rows, cols = qpos[m0 : m0 + query_block].unbind(1)
                x0[0, :, rows, cols] = vals.T
    return x0


def fused_denoise(x, ab, train, machine, p, boundary):
    """x0 by torch's CPU flash-attention kernel; returns (seconds in the kernel, x0)."""
    _, c, h, w = x.shape
    a, v = math.sqrt(ab), 1.0 - ab
    x0 = torch.empty_like(x)
    seconds = 0.0
    for prob in build_problems(machine, p, boundary, h, w, x.device):
        g, mq = prob.qpos.shape[:2]
        dim = c * p * p
        q = gather_patches(x, prob.qpos.reshape(-1, 2), p, prob.query_boundary)
        keys = gather_patches(train, prob.kpos.reshape(-1, 2), p, prob.key_boundary)
        keys = keys.reshape(-1, g, prob.keys_per_image, dim).transpose(0, 1).reshape(g, -1, dim)
        centre = keys.reshape(g, -1, c, p, p)[..., p // 2, p // 2]
        width = dim + 1 + c  # the kernel wants values as wide as keys
        qa = torch.zeros(1, g, mq, width)
        qa[0, :, :, :dim] = q.reshape(g, mq, dim) * (a / v)
        qa[0, :, :, dim] = 1.0
        ka = torch.zeros(1, g, keys.shape[1], width)
        ka[0, :, :, :dim] = keys
        ka[0, :, :, dim] = -(a * a / (2 * v)) * (keys * keys).sum(-1)
        va = torch.zeros_like(ka)
        va[0, :, :, :c] = centre
        t0 = time.perf_counter()
        out, _lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            qa, ka, va, 0.0, False, attn_mask=None, scale=1.0
        )
        seconds += time.perf_counter() - t0
        rows, cols = prob.qpos.reshape(-1, 2).unbind(1)
        x0[0, :, rows, cols] = out[0, :, :, :c].reshape(g * mq, c).T
    return seconds, x0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=1000, help="training images")
    ap.add_argument("--p", type=int, nargs="+", default=[3, 7, 11, 15])
    ap.add_argument("--machines", nargs="+", default=["els", "bbels"])
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--no-naive", action="store_true", help="skip the straightforward run")
    ap.add_argument("--no-fused", action="store_true", help="skip torch's fused attention")
    ap.add_argument(
        "--float64-check",
        action="store_true",
        help="also print how far ours and the straightforward x0 are from a float64 run",
    )
    ap.add_argument(
        "--torch-route",
        action="store_true",
        help="also time each step on the torch route (a GPU's, or an install's without the"
        " compiled library and numba)",
    )
    ap.add_argument("--data", nargs="+", choices=["random", "mnist"], default=["random", "mnist"])
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ab = abar_of(0.5)
    mm_rate, exp_rate = machine_rates(device)
    print(
        f"device {device} threads {torch.get_num_threads()}  N = {args.n}  t = 0.5 "
        f"(abar = {ab:.4f})  torch {torch.__version__}"
    )
    print(f"this machine: matmul {mm_rate:.1f} GFLOP/s, exp {exp_rate / 1e9:.2f} G/s")
    if device.type == "cpu":
        lib = native.isa_name(native.best_isa()) if native.available() else native.reason
        print(f"compiled library (foldc.c): {lib}; numba's pass: {fused.reason or 'on'}")
        print(
            f"routes: window sums from C * P * P = {routes.WINDOW_SUMS_MIN_NUMBERS}, compiled"
            f" fold up to {routes.FOLD_MAX_NUMBERS}; {routes.ENV_VAR}="
            f"{os.environ.get(routes.ENV_VAR, '')!r}"
        )
    for data in args.data:
        train, clean = dataset(data, args.n)
        g = torch.Generator().manual_seed(1)
        noise = torch.randn(1, 1, 32, 32, generator=g)
        x = (math.sqrt(ab) * clean + math.sqrt(1 - ab) * noise).to(device)
        table(args, data, train.to(device), x, ab, device, mm_rate, exp_rate)


def dataset(name: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training images [n, 1, 32, 32], a clean image [1, 1, 32, 32] not among them)."""
    if name == "mnist":
        from ccdm_gui.core.datasets import load_dataset
        from ccdm_gui.core.resources import default_dataset_path

        images = load_dataset(default_dataset_path(), limit=n + 1).images
        return images[:n].contiguous(), images[n : n + 1].clone()
    g = torch.Generator().manual_seed(0)
    train = torch.rand(n, 1, 32, 32, generator=g) * 2 - 1
    return train, torch.rand(1, 1, 32, 32, generator=g) * 2 - 1


def table(args, data, train, x, ab, device, mm_rate, exp_rate) -> None:
    print(
        f"\n{data} training images; 'cold s' is the first call (hashing for the patch"
        " merge), 's/step' the best warm one; GFLOP/s, Gexp/s and x bound count every"
        " candidate, merged or not"
    )
    total = paper_total = 0.0
    rows = []  # printed once every case has run: x bound needs the run's fastest rates
    for machine in args.machines:
        boundary = "circular" if machine == "els" else "zeros"
        for p in args.p:
            pairs = logit_count(machine, p, boundary, 32, 32, args.n)
            flops = 2.0 * pairs * p * p

            def run(machine=machine, boundary=boundary, p=p):
                return machine_denoise(x, ab, train, machine, p, boundary)

            rates_before = machine_rates(device)
            dedup.clear_cache()
            with routes.watch() as taken:
                cold = best_time(run, device, 1)
            secs, out = timed(run, device, args.repeat)
            torch_s = math.nan
            if args.torch_route:
                # Alternating with the chosen routes, so both see the same machine mood.
                torch_s = math.inf
                for _ in range(args.repeat):
                    with routes.override("torch"):
                        torch_s = min(torch_s, best_time(run, device, 1))
                    secs = min(secs, best_time(run, device, 1))
            # This machine's speed drifts within a run: the rates are measured again after
            # each case, and the fastest reading of the table counts for all its rows
            # (the strictest bound).
            mm_now, exp_now = machine_rates(device)
            mm_rate, exp_rate = max(mm_rate, mm_now), max(exp_rate, exp_now)
            # The bound at the rates read just before and just after this case (the
            # faster of the two): the machine's drift between cases then cancels.
            mm_adj, exp_adj = max(rates_before[0], mm_now), max(rates_before[1], exp_now)
            adjacent = secs / (flops / (mm_adj * 1e9) + pairs / exp_adj)
            naive_s = speedup = diff = math.nan
            check = ""
            if not args.no_naive:
                naive_s, naive_out = timed(
                    lambda m=machine, b=boundary, p=p: naive_denoise(x, ab, train, m, p, b),
                    device,
                    1,
                )
                diff = (naive_out - out.x0).abs().max().item()
                speedup = naive_s / secs
                if args.float64_check:
                    # Which side the max|dx0| column's difference comes from.
                    ref = machine_denoise(x.double(), ab, train.double(), machine, p, boundary).x0
                    ours64 = (out.x0.double() - ref).abs().max().item()
                    naive64 = (naive_out.double() - ref).abs().max().item()
                    check = f"  against float64: ours {ours64:.1e}, straightforward {naive64:.1e}"
            fused_s = fused_x = math.nan
            if not args.no_fused and device.type == "cpu":
                fused_s = math.inf
                for _ in range(args.repeat):
                    t_f, fused_out = fused_denoise(x, ab, train, machine, p, boundary)
                    fused_s = min(fused_s, t_f)
                fused_diff = (fused_out - out.x0).abs().max().item()
                if fused_diff > 1e-3:
                    print(f"  fused kernel disagrees: max|dx0| = {fused_diff:.1e}")
                fused_x = secs / fused_s
            paper = REFERENCE_S.get((machine, p), math.nan) if args.n == 1000 else math.nan
            total += secs
            paper_total += paper
            name = f"{machine}-{boundary}"
            head = f"{name:<14}{p:>3}{cold:>8.3f}{secs:>8.3f}{flops / secs / 1e9:>9.1f}"
            tail = (
                f"{naive_s:>9.2f}{speedup:>9.1f}{diff:>10.1e}{fused_s:>9.3f}{fused_x:>8.2f}"
                f"{paper:>9.1f}"
                + (f"{torch_s:>9.3f}{torch_s / secs:>8.2f}" if args.torch_route else "")
                + f"  {'+'.join(sorted({r.value for r in taken}))}"
            )
            rows.append((head, f"{adjacent:>7.2f}{tail}", check, secs, flops, pairs))
            print(f"  ({name} P = {p} done)", file=sys.stderr, flush=True)
    print(
        f"{'machine':<14}{'P':>3}{'cold s':>8}{'s/step':>8}{'GFLOP/s':>9}{'Gexp/s':>8}"
        f"{'x bound':>9}{'x adj':>7}{'naive s':>9}{'speed-up':>9}{'max|dx0|':>10}{'flash s':>9}"
        f"{'x flash':>8}{'paper s':>9}"
        + (f"{'torch s':>9}{'x torch':>8}" if args.torch_route else "")
        + "  route"
    )
    for head, tail, check, secs, flops, pairs in rows:
        bound = flops / (mm_rate * 1e9) + pairs / exp_rate
        print(f"{head}{pairs / secs / 1e9:>8.2f}{secs / bound:>9.2f}{tail}")
        if check:
            print(check)
    print(f"rates behind 'x bound': matmul {mm_rate:.1f} GFLOP/s, exp {exp_rate / 1e9:.2f} G/s")
    print(f"total {total:.2f} s for {len(args.machines) * len(args.p)} steps", end="")
    if not math.isnan(paper_total):
        print(f"; paper's reference {paper_total:.1f} s -> {paper_total / total:.1f}x faster")
    else:
        print()


if __name__ == "__main__":
    main()
