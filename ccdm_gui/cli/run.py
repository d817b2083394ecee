"""ccdm run: one comparison (CNN beside a score machine), saved as trajectory.npz + metrics.json."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.checkpoint import ModelInfo
    from ..core.spec import RunSpec


def default_model() -> str:
    from ..core.resources import default_model_path

    return str(default_model_path())


def default_dataset(model: str | None = None) -> str:
    """The dataset ``model`` was trained on where this computer has it, else MNIST."""
    from ..core.checkpoint import CheckpointError
    from ..core.datasets.known import dataset_for_model
    from ..core.loaders import read_info
    from ..core.resources import default_dataset_path

    found = None
    if model is not None:
        try:
            found = dataset_for_model(read_info(model).dataset)
        except CheckpointError:
            found = None  # the command's own load reports the file
    return str(found or default_dataset_path())


def add_model_data_args(p: argparse.ArgumentParser, subset: int) -> None:
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped MNIST ResNet)")
    p.add_argument(
        "--dataset",
        default=None,
        help="dataset file or folder (default: the one the model was trained on, else MNIST)",
    )
    p.add_argument(
        "--subset",
        default=subset,
        help=f"use the first N training images, of the run's class when it has one, or "
        f"'all' (default {subset})",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")


def resolve_common(args: argparse.Namespace) -> None:
    """The checks every computing command shares, none of which loads anything: numbers,
    the device, and that the model and dataset exist. Raises ArgumentError."""
    from ..core import validate

    args.subset = validate.subset("--subset", args.subset)
    validate.at_least("--threads", args.threads, 0)
    for name in ("steps", "cnn_steps", "seeds", "p_max"):
        if isinstance(getattr(args, name, None), int):
            validate.at_least("--" + name.replace("_", "-"), getattr(args, name))
    if hasattr(args, "patch_size"):
        validate.patch_size("--patch-size", args.patch_size)
    args.device = validate.device(args.device)
    args.model = str(validate.model_file(args.model or default_model()))
    args.dataset = str(validate.dataset_path(args.dataset or default_dataset(args.model)))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def checked_spec(args: argparse.Namespace, info: ModelInfo, seed: int) -> RunSpec:
    """run_spec, with the label checked against the model and the training images read
    (so a dataset that does not fit fails here, before the CNN's first step)."""
    from ..core import validate

    args.label = validate.label(args.label, info)
    try:
        spec = run_spec(args, info, seed)
    except ValueError as e:
        raise validate.ArgumentError("--machine", f"{args.machine}: {e}") from None
    validate.training_images(spec, info)
    return spec


def parse_patch_size(text: str) -> int | None:
    if text in ("calibrated", "schedule", "auto"):
        return None
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"patch size must be an odd integer or 'calibrated', got {text!r}"
        ) from None
    if p < 1 or p % 2 == 0:
        raise argparse.ArgumentTypeError(f"patch size must be a positive odd integer, got {p}")
    return p


def add_patch_size_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--patch-size",
        type=parse_patch_size,
        default=None,
        help="odd P for every step, or 'calibrated' (default)",
    )


def run_spec(args: argparse.Namespace, info: ModelInfo, seed: int) -> RunSpec:
    """The comparison that ``ccdm run`` and ``ccdm export`` compute for ``seed``; what the
    options leave open follows the model (``info``), as the options' help says."""
    from ..core.machine_registry import default_machine
    from ..core.spec import RunSpec

    boundary = args.boundary or info.padding
    machine = args.machine or default_machine(boundary)
    label = args.label if args.label is not None else info.label_for_seed(seed)
    return RunSpec(
        model=args.model,
        dataset=args.dataset,
        subset=args.subset,
        seed=seed,
        label=label,
        steps=args.steps,
        machine=machine,
        boundary=boundary,
        patch_size=args.patch_size,
        device=args.device,
    )


def progress_bar(desc: str, unit: str):
    """A terminal bar and the ``on_progress(done, total)`` that moves it."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit)

    def on_progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, on_progress


class StageBars:
    """``on_step`` for run_comparison: a terminal progress bar per part."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.bars: dict = {}

    def __call__(self, stage: str, i: int, total: int, _partial=None) -> None:
        from tqdm import tqdm

        if stage not in self.bars:
            # One bar at a time: the CNN's is done when the machine's starts.
            self.close()
            self.bars[stage] = tqdm(total=total, desc=self.prefix + stage, unit="step")
        self.bars[stage].n = i + 1
        self.bars[stage].refresh()

    def close(self) -> None:
        for b in self.bars.values():
            b.close()


def _cmd_run(args: argparse.Namespace) -> int:
    from ..core import interrupt, validate
    from ..core.atomic import atomic_write_bytes
    from ..core.pipeline import (
        Timing,
        patch_schedule,
        run_comparison,
        save_comparison,
        schedule_for,
    )
    from .errors import abandoned

    resolve_common(args)
    out = validate.output_folder("--out", args.out)
    validate.new_files("--out", [out / "trajectory.npz", out / "metrics.json"], args.overwrite)
    model = validate.load_model(args.model, args.device)
    info = model.info
    spec = checked_spec(args, info, args.seed)
    bars = StageBars()
    timing = Timing()
    with abandoned("run"):
        comp = run_comparison(spec, on_step=bars, timing=timing)
    timings = {"cnn_seconds": timing.cnn_seconds, "machine_seconds": timing.machine_seconds}
    bars.close()
    _, own = schedule_for(info, spec.machine)
    metrics = {
        "spec": json.loads(json.dumps(comp.spec.__dict__)),
        "t": comp.cnn.t.tolist(),
        "patch_size": [int(p) for p in patch_schedule(spec, info, model.schedule)],
        "patch_schedule_source": "fixed"
        if args.patch_size is not None
        else ("calibrated" if own else "default"),
        "correlation": comp.correlation.tolist(),
        "final_correlation": comp.final_correlation,
        "timings": timings,
    }
    text = json.dumps(metrics, indent=2)
    with interrupt.deferred():  # both files, or (on Ctrl+C before this) neither
        save_comparison(comp, out / "trajectory.npz")
        atomic_write_bytes(out / "metrics.json", lambda f: f.write(text.encode()))
    print(
        f"{spec.machine} vs CNN, seed {args.seed}: final correlation {comp.final_correlation:.4f} "
        f"(CNN {timings['cnn_seconds']:.1f} s, machine {timings['machine_seconds']:.1f} s)"
    )
    print(f"wrote {out / 'trajectory.npz'} and {out / 'metrics.json'}")
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES, MACHINES

    p = sub.add_parser("run", help="run one CNN-vs-machine comparison and save its trajectory")
    add_model_data_args(p, subset=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--label",
        default=None,
        help="class, by number or name (conditional models default to a label drawn from the seed)",
    )
    p.add_argument(
        "--machine",
        choices=MACHINES,
        default=None,
        help="default: the model's padding's machine (bbels for zeros, els for circular)",
    )
    p.add_argument(
        "--boundary", choices=BOUNDARIES, default=None, help="default: the model's padding"
    )
    add_patch_size_arg(p)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default="runs/run", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a run saved in --out")
    p.set_defaults(func=_cmd_run)
