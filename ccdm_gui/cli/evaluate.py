"""ccdm evaluate: median correlation of machine samples with CNN samples over many seeds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .run import add_model_data_args, add_patch_size_arg, resolve_common


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.atomic import atomic_write_bytes
    from ..core.evaluate import evaluate
    from ..core.machine_registry import MACHINES

    resolve_common(args)
    machines = [m.strip() for m in args.machine.split(",") if m.strip()]
    for m in machines + ([args.baseline] if args.baseline else []):
        if m not in MACHINES:
            raise SystemExit(f"ccdm evaluate: unknown machine {m!r}; known: {', '.join(MACHINES)}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    bar = tqdm(desc="evaluate", unit="step")

    def progress(stage: str, i: int, total: int) -> None:
        bar.set_description(stage, refresh=False)
        bar.total = total
        bar.n = i + 1
        bar.refresh()

    res = evaluate(
        args.model,
        args.dataset,
        machines,
        seeds,
        cnn_steps=args.cnn_steps,
        steps=args.steps,
        subset=args.subset,
        boundary=args.boundary,
        patch_size=args.patch_size,
        baseline=args.baseline,
        device=args.device,
        on_progress=progress,
    )
    bar.close()
    print(
        f"{len(seeds)} seeds, CNN {args.cnn_steps} steps, machines {args.steps} steps, "
        f"N = {args.subset}{' per class' if res['subset_of'] == 'class' else ''}, "
        f"boundary {res['boundary']}"
    )
    print(f"{'machine':8s} {'median':>8s} {'q1':>8s} {'q3':>8s} {'seconds':>9s}")
    for m, s in res["summary"].items():
        print(f"{m:8s} {s['median']:8.4f} {s['q1']:8.4f} {s['q3']:8.4f} {res['seconds'][m]:9.1f}")
    for m, frac in res.get("beats_baseline", {}).items():
        print(f"{m} beats {res['baseline']} on {100 * frac:.0f}% of seeds")
    if args.json:
        text = json.dumps(res, indent=2)
        atomic_write_bytes(Path(args.json), lambda f: f.write(text.encode()))
        print(f"wrote {args.json}")
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES

    p = sub.add_parser("evaluate", help="median CNN-vs-machine correlation over seeds")
    add_model_data_args(p, subset=1000)
    p.add_argument("--machine", default="bbels", help="comma-separated, e.g. bbels,ls,ideal")
    p.add_argument("--seeds", type=int, default=100, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--cnn-steps", type=int, default=20, help="20 or 150 in the paper")
    p.add_argument("--steps", type=int, default=20, help="machine DDIM steps")
    p.add_argument(
        "--boundary",
        choices=BOUNDARIES,
        default=None,
        help="default: the model's padding",
    )
    add_patch_size_arg(p)
    p.add_argument(
        "--baseline", default=None, help="e.g. ideal: report how often each machine beats it"
    )
    p.add_argument("--json", default=None, help="write per-seed values and summaries here")
    p.set_defaults(func=_cmd_evaluate)
