"""ccdm grid: a grid of seeds, CNN above machine, for one class or all of them, as one
PNG (the final samples) and one video (every step).

    ccdm grid --model models/fashion_resnet_zeros_cond.safetensors --class trouser \\
        --seeds 0-15 --out grid.png --video grid.mp4
"""

from __future__ import annotations

import argparse

from .outputs import print_written, video_file
from .run import add_model_data_args, add_patch_size_arg, progress_bar, resolve_common


def _seeds(text: str) -> list[int]:
    from ..core.grid import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _labels(text: str | None, num_classes: int, names: list[str]) -> list[int | None]:
    from ..core.datasets.known import parse_class

    if text is None:
        text = "all" if num_classes > 0 else None
    if text is None:
        return [None]
    if text.strip().lower() == "all":
        if not names:
            raise ValueError("needs a class-conditional model or a known dataset")
        return list(range(len(names)))
    if not names:
        raise ValueError("this model's dataset has no known classes")
    return [parse_class(text, names)]


def _check(args: argparse.Namespace) -> list[int | None]:
    """Every argument and output, before any sampling; returns the rows' labels."""
    from ..core import validate
    from ..core.datasets.known import class_names
    from ..core.machine_registry import default_machine
    from ..core.spec import RunSpec
    from ..export import WriteError
    from ..export.seedgrid import check_outputs
    from .evaluate import check_machines

    if args.out is None and args.video is None:
        raise validate.ArgumentError("--out", "missing: give --out PNG, --video FILE or both")
    if args.out is not None:
        validate.output_file("--out", args.out, args.overwrite, ("png",), folder_must_exist=True)
    if args.video is not None:
        video_file("--video", args.video, args.overwrite, folder_must_exist=True)
        try:
            check_outputs(args.out, args.video, args.overwrite)
        except WriteError as e:
            raise validate.ArgumentError("--video", f"{args.video}: {e}") from None
    validate.at_least("--scale", args.scale)
    validate.at_least("--hold", args.hold, 0)
    if not args.fps > 0:
        raise validate.ArgumentError("--fps", f"{args.fps}: must be more than 0")
    resolve_common(args)
    info = validate.load_model(args.model, args.device).info
    names = class_names(info.dataset.get("id"), info.num_classes or None)
    try:
        labels = _labels(args.label, info.num_classes, names)
    except ValueError as e:
        raise validate.ArgumentError("--class", f"{args.label}: {e}") from None
    boundary = args.boundary or info.padding
    check_machines([args.machine or default_machine(boundary)], boundary)
    for lab in labels:
        validate.label(lab, info)
        spec = RunSpec(args.model, args.dataset, args.subset, label=lab, device=args.device)
        validate.training_images(spec, info)
    return labels


def _cmd_grid(args: argparse.Namespace) -> int:
    from ..core.grid import seed_grid
    from ..export.seedgrid import export_seed_grid
    from .errors import abandoned

    labels = _check(args)
    bar, progress = progress_bar("grid", "step")

    with abandoned("grid"):  # the files are written after
        g = seed_grid(
            args.model,
            args.dataset,
            labels,
            args.seeds,
            steps=args.steps,
            subset=args.subset,
            machine=args.machine,
            boundary=args.boundary,
            patch_size=args.patch_size,
            device=args.device,
            on_progress=progress,
        )
    bar.close()
    written = export_seed_grid(
        g,
        args.out,
        args.video,
        scale=args.scale,
        fps=args.fps,
        hold_last=args.hold,
        overwrite=args.overwrite,
    )
    print(f"{'class':14s} " + " ".join(f"{s:>5d}" for s in g.seeds) + "   median r")
    for name, row in zip(g.names, g.correlation, strict=True):
        cells = " ".join(f"{v:5.2f}" for v in row)
        print(f"{name[:14]:14s} {cells}   {float(sorted(row)[len(row) // 2]):.2f}")
    print_written(written)
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES, MACHINES

    p = sub.add_parser(
        "grid",
        help="a grid of seeds, CNN above machine, for one class or all: PNG and video",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_data_args(p, subset=1000)
    p.add_argument(
        "--class",
        dest="label",
        default=None,
        help="a class by name or number (trouser, t-shirt, 1), or 'all' (the default "
        "for a class-conditional model)",
    )
    p.add_argument("--seeds", type=_seeds, default=list(range(8)), help="e.g. 0-15 or 0,3,7")
    p.add_argument("--out", default=None, metavar="PNG", help="the final samples as a PNG")
    p.add_argument("--video", default=None, metavar="FILE", help="every step: .mp4, .gif, .webm")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument("--scale", type=int, default=3, help="pixel enlargement (default 3)")
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--hold", type=float, default=2.0, help="seconds on the last frame")
    p.add_argument("--machine", choices=MACHINES, default=None)
    p.add_argument("--boundary", choices=BOUNDARIES, default=None)
    add_patch_size_arg(p)
    p.add_argument("--steps", type=int, default=20, help="DDIM steps, CNN and machine")
    p.set_defaults(func=_cmd_grid)
