"""ccdm export: a run's frames as a PNG folder and/or a video (mp4, gif, webm).

Either computes the comparison (same options as ``ccdm run``) or exports trajectories
saved by ``ccdm run`` (--trajectory). Several seeds give one output each (suffixed
_seed<S>) or, with --grid, one video of all of them side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .run import (
    StageBars,
    add_model_data_args,
    add_patch_size_arg,
    resolve_common,
    run_spec,
)


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers like 0,1,2; got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def _suffixed(path: Path, seed: int, many: bool) -> Path:
    if not many:
        return path
    return path.with_name(f"{path.stem}_seed{seed}{path.suffix}")


def _compute(args: argparse.Namespace, seeds: list[int]):
    from ..core.pipeline import TrajectoryCache, load_model, run_comparison

    resolve_common(args)
    info = load_model(args.model, args.device).info
    cache = TrajectoryCache()
    for seed in seeds:
        spec = run_spec(args, info, seed)
        bars = StageBars(f"seed {seed} ")
        try:
            comp = run_comparison(spec, cache=cache, on_progress=bars)
        finally:
            bars.close()
        yield comp


def _loaded(paths: list[str]):
    from ..core.pipeline import load_comparison

    for p in paths:
        yield load_comparison(p)


def _cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..core.view import View
    from ..export import ExportError, export_frames, export_grid_video, export_video

    if not args.frames and not args.video:
        print("ccdm export: error: give --frames DIR and/or --video FILE", file=sys.stderr)
        return 2
    if args.grid and not args.video:
        print("ccdm export: error: --grid makes a video; give --video FILE", file=sys.stderr)
        return 2
    seeds = args.seeds or [args.seed]
    many = len(args.trajectory or seeds) > 1
    drawing = dict(
        view=View(show=args.show, prov_mode=args.provenance, diff=args.diff),
        layout=args.layout,
        scale=args.scale,
    )
    video_opts = dict(fps=args.fps, quality=args.quality, hold_last=args.hold)
    comps = _loaded(args.trajectory) if args.trajectory else _compute(args, seeds)

    def bar(desc: str):
        b = tqdm(desc=desc, unit="frame")

        def on_progress(i: int, total: int) -> None:
            b.total = total
            b.n = i
            b.refresh()

        return b, on_progress

    written: list[Path] = []
    try:
        collected = []
        for comp in comps:
            collected.append(comp)
            if args.frames:
                folder = _suffixed(Path(args.frames), comp.spec.seed, many)
                b, cb = bar(f"frames {folder}")
                with b:
                    export_frames(comp, folder, overwrite=args.overwrite, on_progress=cb, **drawing)
                written.append(folder)
            if args.video and not args.grid:
                out = _suffixed(Path(args.video), comp.spec.seed, many)
                b, cb = bar(f"video {out}")
                with b:
                    export_video(
                        comp, out, overwrite=args.overwrite, on_progress=cb, **video_opts, **drawing
                    )
                written.append(out)
        if args.grid:
            out = Path(args.video)
            b, cb = bar(f"grid video {out}")
            with b:
                export_grid_video(
                    collected,
                    out,
                    overwrite=args.overwrite,
                    on_progress=cb,
                    columns=args.columns,
                    **video_opts,
                    **drawing,
                )
            written.append(out)
    except (ExportError, ValueError, FileNotFoundError) as e:
        print(f"ccdm export: error: {e}", file=sys.stderr)
        return 1
    for w in written:
        print(f"wrote {w}")
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES, MACHINES
    from ..core.provenance import KEYS as PROVENANCE_MODES
    from ..core.view import SHOW_MODES
    from ..export.formats import FORMATS, LAYOUTS

    p = sub.add_parser(
        "export",
        help="export a run's frames (PNG) and/or video (mp4, gif, webm)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    out = p.add_argument_group("output")
    out.add_argument("--frames", metavar="DIR", help="write one PNG per step into DIR")
    out.add_argument(
        "--video", metavar="FILE", help=f"write a video: {', '.join('.' + f for f in FORMATS)}"
    )
    out.add_argument("--overwrite", action="store_true", help="replace existing files")
    out.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4)")
    out.add_argument(
        "--quality", type=int, default=None, help="CRF, lower is better (mp4 18, webm 18)"
    )
    out.add_argument(
        "--hold", type=float, default=1.0, help="seconds to hold the last frame (default 1)"
    )
    out.add_argument("--scale", type=int, default=8, help="pixel enlargement (default 8)")
    out.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="composite",
        help="composite: panels with captions; panels: a PNG per panel (a bare strip in "
        "video); strip: panels side by side without text",
    )
    out.add_argument("--show", choices=SHOW_MODES, default="x0", help="x0 (default) or xt")
    out.add_argument("--provenance", choices=PROVENANCE_MODES, default="source")
    out.add_argument("--diff", action="store_true", help="add the CNN - machine panel")
    out.add_argument("--grid", action="store_true", help="one video of all seeds, tiled")
    out.add_argument("--columns", type=int, default=None, help="grid columns (default: square)")

    run = p.add_argument_group("run (ignored with --trajectory)")
    run.add_argument(
        "--trajectory",
        metavar="NPZ",
        action="append",
        help="a trajectory.npz from `ccdm run` (repeat for a grid)",
    )
    add_model_data_args(run, subset=1000)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--seeds", type=_parse_seeds, default=None, help="e.g. 0,1,2,3")
    run.add_argument("--label", type=int, default=None)
    run.add_argument("--machine", choices=MACHINES, default=None)
    run.add_argument("--boundary", choices=BOUNDARIES, default=None)
    add_patch_size_arg(run)
    run.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=_cmd_export)
