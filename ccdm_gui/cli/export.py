"""ccdm export: a run's frames as a PNG folder and/or a video (mp4, gif, webm).

Either computes the comparison (same options as ``ccdm run``) or exports trajectories
saved by ``ccdm run`` (--trajectory). Several seeds give one output each (suffixed
_seed<S>) or, with --grid, one video of all of them side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .outputs import print_written, video_file
from .run import (
    StageBars,
    add_model_data_args,
    add_patch_size_arg,
    checked_spec,
    progress_bar,
    resolve_common,
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


def _check_frames(args, folder: Path, steps: int) -> None:
    from ..core import validate
    from ..core.view import View
    from ..export import SIDECAR, frame_names

    validate.output_folder("--frames", folder)
    if folder.is_dir() and not args.overwrite:
        panels = View(diff=args.diff).panels
        names = [n for step in frame_names(steps, args.layout, panels) for n in step]
        validate.new_files("--frames", [folder / n for n in names + [SIDECAR]], False)


def _check_video(args, path: Path) -> None:
    from ..core import validate

    vf = video_file("--video", path, args.overwrite)
    if args.quality is not None and vf.quality_range is not None:
        lo, hi = vf.quality_range
        if not lo <= args.quality <= hi:
            raise validate.ArgumentError(
                "--quality", f"{args.quality}: {vf.name} takes {lo}..{hi} (lower is better)"
            )


def _check_outputs(args, seeds: list[int], steps: list[int], many: bool) -> None:
    """Every file this export would write, checked before anything is computed."""
    from ..core import validate

    if not args.fps > 0:
        raise validate.ArgumentError("--fps", f"{args.fps}: must be more than 0")
    validate.at_least("--hold", args.hold, 0)
    validate.at_least("--scale", args.scale)
    validate.at_least("--columns", args.columns)
    for seed, n in zip(seeds, steps, strict=True):
        if args.frames:
            _check_frames(args, _suffixed(Path(args.frames), seed, many), n)
        if args.video and not args.grid:
            _check_video(args, _suffixed(Path(args.video), seed, many))
    if args.grid:
        _check_video(args, Path(args.video))


def _load_trajectories(paths: list[str]) -> list:
    from ..core import validate
    from ..core.pipeline import load_comparison

    comps = []
    for p in paths:
        if not Path(p).is_file():
            raise validate.ArgumentError("--trajectory", f"{p}: no such file")
        try:
            comps.append(load_comparison(p))
        except ValueError as e:
            raise validate.ArgumentError("--trajectory", str(e)) from None
    return comps


def _compute(specs: list):
    from ..core.pipeline import TrajectoryCache, run_comparison
    from .errors import abandoned

    cache = TrajectoryCache()
    for spec in specs:
        bars = StageBars(f"seed {spec.seed} ")
        try:
            with abandoned("export"):  # the files are written after, not during
                comp = run_comparison(spec, cache=cache, on_step=bars)
        finally:
            bars.close()
        yield comp


def _cmd_export(args: argparse.Namespace) -> int:
    from ..core import validate
    from ..core.view import View
    from ..export import export_frames, export_grid_video, export_video

    if not args.frames and not args.video:
        print("ccdm export: error: give --frames DIR and/or --video FILE", file=sys.stderr)
        return 2
    if args.grid and not args.video:
        print("ccdm export: error: --grid makes a video; give --video FILE", file=sys.stderr)
        return 2
    if args.trajectory:
        loaded = _load_trajectories(args.trajectory)
        many = len(loaded) > 1
        _check_outputs(args, [c.spec.seed for c in loaded], [len(c.cnn.t) for c in loaded], many)
        comps = iter(loaded)
    else:
        seeds = args.seeds or [args.seed]
        many = len(seeds) > 1
        resolve_common(args)
        _check_outputs(args, seeds, [args.steps] * len(seeds), many)
        info = validate.load_model(args.model, args.device).info
        comps = _compute([checked_spec(args, info, seed) for seed in seeds])
    drawing = dict(
        view=View(show=args.show, prov_mode=args.provenance, diff=args.diff),
        layout=args.layout,
        scale=args.scale,
    )
    video_opts = dict(fps=args.fps, quality=args.quality, hold_last=args.hold)

    written: list[Path] = []
    collected = []
    for comp in comps:
        collected.append(comp)
        if args.frames:
            folder = _suffixed(Path(args.frames), comp.spec.seed, many)
            b, cb = progress_bar(f"frames {folder}", "frame")
            with b:
                export_frames(comp, folder, overwrite=args.overwrite, on_progress=cb, **drawing)
            written.append(folder)
        if args.video and not args.grid:
            out = _suffixed(Path(args.video), comp.spec.seed, many)
            out.parent.mkdir(parents=True, exist_ok=True)  # as --frames and run's --out
            b, cb = progress_bar(f"video {out}", "frame")
            with b:
                export_video(
                    comp, out, overwrite=args.overwrite, on_progress=cb, **video_opts, **drawing
                )
            written.append(out)
    if args.grid:
        out = Path(args.video)
        out.parent.mkdir(parents=True, exist_ok=True)
        b, cb = progress_bar(f"grid video {out}", "frame")
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
    print_written(written)
    return 0


def register(sub) -> None:
    from ..core.machine_registry import BOUNDARIES, MACHINES
    from ..core.provenance import KEYS as PROVENANCE_MODES
    from ..core.view import DEFAULT_VIEW, SHOW_MODES
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
    out.add_argument("--provenance", choices=PROVENANCE_MODES, default=DEFAULT_VIEW.prov_mode)
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
    run.add_argument("--label", default=None, help="class, by number or name")
    run.add_argument("--machine", choices=MACHINES, default=None)
    run.add_argument("--boundary", choices=BOUNDARIES, default=None)
    add_patch_size_arg(run)
    run.add_argument("--steps", type=int, default=20)
    p.set_defaults(func=_cmd_export)
