"""The ``ccdm`` command line. Each sub-command lives in its own module here and
registers itself; Qt is imported only by the ``gui`` command, lazily."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Spinning OpenMP workers starve each other on a busy CPU (measured: 5 UNet steps took
# 50 s spinning vs 2.7 s passive); it must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .. import __version__
from .errors import DEBUG_ENV

DEBUG_HELP = f"show the traceback of an error (as does {DEBUG_ENV}=1), for bug reports"

# Sub-command modules; each exposes register(subparsers). A release holds every one
# (packaging collects all of ccdm_gui), so a missing one is an ImportError, not a
# command that silently disappears.
COMMANDS = ("train", "run", "evaluate", "calibrate", "export", "grid", "gui", "selftest")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ccdm", description="ccdm-gui: CNN diffusion samples beside the ELS machine"
    )
    p.add_argument("--version", action="version", version=f"ccdm-gui {__version__}")
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    for sp in sub.choices.values():
        # Also after the sub-command, where users type it; SUPPRESS keeps the top-level
        # value when it is not repeated there.
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    from .errors import run_command

    args = build_parser().parse_args(argv)
    return run_command(args.command, args.func, args)


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
