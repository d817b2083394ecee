"""ccdm calibrate: fit each machine's patch-size schedule P(t) to a model (docs/design.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from ..core import validate
    from ..core.atomic import atomic_write_bytes
    from ..core.calibrate import calibrate_model
    from ..core.machine_registry import CALIBRATABLE
    from ..core.spec import RunSpec
    from .errors import abandoned
    from .evaluate import check_machines, machine_list
    from .run import progress_bar, resolve_common

    resolve_common(args)
    machines = machine_list("--machines", args.machines, CALIBRATABLE)
    validate.at_least("--first-seed", args.first_seed, 0)
    if args.json:
        validate.output_file("--json", args.json, args.overwrite)
    if args.write:
        from ..core.loaders import calibration_file

        # where --write puts the schedules: the checkpoint, or a JSON beside the model
        validate.model_file(args.model)
        validate.output_file("model", calibration_file(args.model), overwrite=True)
    info = validate.load_model(args.model, args.device).info
    check_machines(machines, args.boundary or info.padding)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for lab in sorted({info.label_for_seed(s) for s in seeds}, key=str):
        validate.training_images(
            RunSpec(args.model, args.dataset, args.subset, label=lab, device=args.device), info
        )
    bar, progress = progress_bar("calibrate", "eval")

    # With --write the checkpoint is rewritten inside: Ctrl+C must then unwind normally.
    with contextlib.nullcontext() if args.write else abandoned("calibrate"):
        res = calibrate_model(
            args.model,
            args.dataset,
            subset=args.subset,
            seeds=range(args.first_seed, args.first_seed + args.seeds),
            machines=machines,
            p_max=args.p_max,
            boundary=args.boundary,
            steps=args.steps,
            device=args.device,
            write=args.write,
            on_progress=progress,
        )
    bar.close()
    for m in machines:
        print(res.table(m))
        print(f"{m} P(t), t = {1 / args.steps:.2f} .. 1.00: {' '.join(map(str, res.schedule(m)))}")
    if args.write:
        from ..core.loaders import calibration_file

        print(f"wrote calibrated_p[{', '.join(machines)}] into {calibration_file(args.model)}")
    if args.json:
        out = {
            "model": args.model,
            "dataset": args.dataset,
            "subset": args.subset,
            "seeds": res.seeds,
            "p_values": res.p_values,
            "t": res.t.tolist(),
            "schedules": res.schedules(),
            "similarity": {m: res.similarity[m].tolist() for m in machines},
            "best": {m: res.best[m].tolist() for m in machines},
        }
        text = json.dumps(out)
        atomic_write_bytes(Path(args.json), lambda f: f.write(text.encode()))
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES, CALIBRATABLE
    from .run import add_model_data_args

    p = sub.add_parser("calibrate", help="calibrate each machine's P(t) against a model")
    add_model_data_args(p, subset=5000)
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (10-20 in the paper)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=1000,
        help="calibration seeds start here, apart from evaluation seeds 0..99",
    )
    p.add_argument("--machines", default="bbels", help=f"comma-separated: {','.join(CALIBRATABLE)}")
    p.add_argument("--p-max", type=int, default=17, help="largest odd P tried (31 for UNets)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument(
        "--boundary",
        choices=BOUNDARIES,
        default=None,
        help="default: the model's padding",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="store the schedules in the checkpoint (beside a diffusers folder or .pt file)",
    )
    p.add_argument("--json", default=None, help="also write the full similarity table here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_cmd_calibrate)
