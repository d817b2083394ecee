"""ccdm evaluate: median correlation of machine samples with CNN samples over many seeds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .run import add_model_data_args, add_patch_size_arg, resolve_common


def _report(res: dict, json_path: str | None) -> None:
    from ..core.atomic import atomic_write_bytes

    per_class = " per class" if res.get("subset_of") == "class" else ""
    print(
        f"{len(res['seeds'])} seeds, CNN {res['cnn_steps']} steps, machines {res['steps']} "
        f"steps, N = {res['subset'] or 'all'}{per_class}, boundary {res['boundary']}"
    )
    print(f"{'machine':8s} {'median':>8s} {'q1':>8s} {'q3':>8s} {'seconds':>9s}")
    for m, s in res["summary"].items():
        print(f"{m:8s} {s['median']:8.4f} {s['q1']:8.4f} {s['q3']:8.4f} {res['seconds'][m]:9.1f}")
    for m, frac in res.get("beats_baseline", {}).items():
        print(f"{m} beats {res['baseline']} on {100 * frac:.0f}% of seeds")
    if json_path:
        text = json.dumps(res, indent=2)
        atomic_write_bytes(Path(json_path), lambda f: f.write(text.encode()))
        print(f"wrote {json_path}")


def _combine(paths: list[str], json_path: str | None) -> int:
    from ..core.evaluate import combine

    parts = []
    for p in paths:
        try:
            parts.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            print(f"ccdm evaluate: error: {p}: not a readable evaluation ({e})", file=sys.stderr)
            return 1
    try:
        res = combine(parts)
    except (ValueError, KeyError, TypeError) as e:
        print(f"ccdm evaluate: error: cannot combine {', '.join(paths)}: {e}", file=sys.stderr)
        return 1
    _report(res, json_path)
    return 0


def machine_list(what: str, text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """Comma-separated machine names, each one known (and in ``allowed``, if given)."""
    from ..core.machine_registry import MACHINES
    from ..core.validate import ArgumentError

    allowed = allowed or MACHINES
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ArgumentError(what, f"{text!r}: name at least one machine")
    for m in names:
        if m not in allowed:
            raise ArgumentError(what, f"{m}: unknown; choose from {', '.join(allowed)}")
    return names


def check_machines(machines: list[str], boundary: str) -> None:
    """Each machine with the boundary it will run on (the registry's rule)."""
    from ..core.machine_registry import check_pair
    from ..core.validate import ArgumentError

    for m in machines:
        try:
            check_pair(m, boundary)
        except ValueError as e:
            raise ArgumentError("--machine", f"{m}: {e}") from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core import validate
    from ..core.evaluate import evaluate
    from ..core.spec import RunSpec
    from .errors import abandoned

    if args.json:
        validate.output_file("--json", args.json, args.overwrite)
    if args.combine:
        return _combine(args.combine, args.json)
    resolve_common(args)
    machines = machine_list("--machine", args.machine)
    if args.baseline:
        machine_list("--baseline", args.baseline)
    validate.at_least("--first-seed", args.first_seed, 0)
    info = validate.load_model(args.model, args.device).info
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    boundary = args.boundary or info.padding
    check_machines(machines + ([args.baseline] if args.baseline else []), boundary)
    for lab in sorted({info.label_for_seed(s) for s in seeds}, key=str):
        validate.training_images(
            RunSpec(args.model, args.dataset, args.subset, label=lab, device=args.device), info
        )
    bar = tqdm(desc="evaluate", unit="step")

    def progress(stage: str, i: int, total: int) -> None:
        bar.set_description(stage, refresh=False)
        bar.total = total
        bar.n = i + 1
        bar.refresh()

    with abandoned("evaluate"):  # --json is written after
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
    _report(res, args.json)
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
    p.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        default=None,
        help="instead of computing, join evaluations of the same settings over disjoint "
        "seeds (--first-seed chunks) into one (--json)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_cmd_evaluate)
