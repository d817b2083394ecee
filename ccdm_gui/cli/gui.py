"""ccdm gui (and the ``ccdm-gui`` launcher): open the window."""

from __future__ import annotations

import argparse
import os
import sys

from ..core.machine_registry import BOUNDARIES, MACHINES, check_pair


def _patch_size(text: str) -> int | str:
    if text == "calibrated":
        return text
    try:
        p = int(text)
    except ValueError:
        msg = f"expected an odd number or 'calibrated', got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if p < 1 or p % 2 == 0:
        raise argparse.ArgumentTypeError(f"patch size must be a positive odd number, got {p}")
    return p


def _display_available() -> bool:
    """Whether Qt will find a screen; without one it aborts the process (status 134)
    with a message about platform plugins that tells a user nothing."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True  # chosen explicitly (offscreen, wayland, vnc...): Qt's call
    if sys.platform != "linux":
        return True  # Windows and macOS always have their window system
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _cmd_gui(args: argparse.Namespace) -> int:
    # Before torch loads OpenMP: spinning OpenMP workers on a CPU that other programs
    # also use made each CNN step ~20x slower (50 s vs 2.7 s for 5 UNet steps, measured
    # on a loaded 2-core box); passive waiting costs nothing measurable when idle.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..core import validate

    device = None if args.device is None else validate.device(args.device)
    if args.subset is not None:  # None: the remembered subset; 0: the whole set
        args.subset = validate.subset("--subset", args.subset) or 0
    validate.at_least("--steps", args.steps)
    number = None if args.label is None else validate.label_number(args.label)
    if number is not None:
        args.label = number
    elif args.label is not None:
        # A class name means what the model's dataset calls its classes: the model named,
        # else the shipped default (a remembered model is not known until the window opens).
        from ..core.resources import default_model_path

        model = args.model or str(default_model_path())
        args.label = validate.label(args.label, validate.load_model(model, "cpu").info)
    if args.machine and args.boundary:
        try:
            check_pair(args.machine, args.boundary)
        except ValueError as e:
            raise validate.ArgumentError("--machine", f"{args.machine}: {e}") from None
    if args.screenshot:
        validate.output_file("--screenshot", args.screenshot, overwrite=True)
    if not _display_available():
        if not args.screenshot:
            msg = "ccdm gui: error: no display: set DISPLAY or use ccdm's command line"
            print(msg, file=sys.stderr)
            return 1
        # A screenshot needs no screen: Qt renders the window offscreen.
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    options = {
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "machine": args.machine,
        "boundary": args.boundary,
        "patch_size": args.patch_size,
        "subset": args.subset,
        "steps": args.steps,
        "device": device,
        "label": args.label,
        "screenshot": args.screenshot,
    }
    from ..app.app import run_gui  # Qt is imported only here

    return run_gui(options, screenshot=args.screenshot, timeout_s=args.screenshot_timeout)


def register(sub) -> None:
    g = sub.add_parser(
        "gui",
        help="open the window (the default shipped model and MNIST unless told otherwise)",
    )
    g.add_argument("--model", default=None, help="checkpoint (.safetensors or .pt)")
    g.add_argument("--dataset", default=None, help="dataset file or folder")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--machine", choices=MACHINES, default=None)
    g.add_argument("--boundary", choices=BOUNDARIES, default=None)
    g.add_argument(
        "--patch-size", type=_patch_size, default=None, help="odd P, or 'calibrated' for P(t)"
    )
    g.add_argument("--subset", default=None, help="training images for the machine, or 'all'")
    g.add_argument("--steps", type=int, default=None)
    g.add_argument("--device", default=None, help="cpu, cuda:0, mps or auto")
    g.add_argument("--label", default=None, help="class for a conditional model, by number or name")
    g.add_argument(
        "--screenshot",
        metavar="PATH",
        default=None,
        help="save a PNG of the window once the first comparison is complete, then exit",
    )
    g.add_argument("--screenshot-timeout", type=float, default=900.0, help=argparse.SUPPRESS)
    g.set_defaults(func=_cmd_gui)
