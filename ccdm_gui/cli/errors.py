"""The one place where a sub-command's failure becomes what the user reads: one line on
stderr, ``ccdm <command>: error: <what> <path>: <why>``, and an exit status.

    2    a bad argument, found before any computation (core.validate.ArgumentError)
    1    a failure at run time: a file that went bad, a full disk, the device's memory
    130  Ctrl+C

The traceback appears only with ``--debug`` or CCDM_DEBUG=1 (for bug reports). An
exception that is none of the project's own is a bug: a short message says where to
report it.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

DEBUG_ENV = "CCDM_DEBUG"
EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
REPORT_TO = "the ccdm-gui issue tracker"


def debug_wanted(args: argparse.Namespace | None = None) -> bool:
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(text: str) -> str:
    """Library messages (PyAV's, PyTorch's) can span lines; the user gets one."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(e: BaseException) -> tuple[str, int]:
    """The message (without the ``ccdm <command>: error:`` prefix) and the exit status."""
    from ..core.checkpoint import CheckpointError
    from ..core.datasets import DatasetError
    from ..core.devices import out_of_memory
    from ..core.validate import ArgumentError
    from ..export import WriteError

    if isinstance(e, ArgumentError):
        return one_line(str(e)), EXIT_USAGE
    memory = out_of_memory(e)
    if memory == "gpu":
        return "the GPU ran out of memory; try a smaller --subset or --device cpu", EXIT_FAILURE
    if memory == "cpu":
        return "out of memory; try a smaller --subset (or fewer --seeds)", EXIT_FAILURE
    if isinstance(e, CheckpointError):
        return one_line(f"model {e}"), EXIT_FAILURE
    if isinstance(e, DatasetError):
        return one_line(f"dataset {e}"), EXIT_FAILURE
    if isinstance(e, (WriteError, ValueError)):
        return one_line(str(e)), EXIT_FAILURE
    if isinstance(e, OSError):
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return one_line(f"{where}{e.strerror or e}"), EXIT_FAILURE
    return "", EXIT_FAILURE


def interrupted_line(command: str) -> str:
    return f"ccdm {command}: interrupted; nothing more was written"


def abandoned(command: str):
    """For a block that computes and writes nothing: Ctrl+C there ends ``ccdm <command>``
    at once (core.interrupt.abandoned)."""
    from ..core.interrupt import abandoned as block

    return block(interrupted_line(command))


def run_command(command: str, func: Callable[[argparse.Namespace], int], args) -> int:
    """Run a sub-command; whatever it raises ends here as one line and a status."""
    debug = debug_wanted(args)
    prefix = f"ccdm {command}"
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        _close_bars()
        print(f"\n{interrupted_line(command)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        _close_bars()
        if debug:
            traceback.print_exception(e)
        msg, code = describe(e)
        if msg:
            print(f"{prefix}: error: {msg}", file=sys.stderr)
            return code
        print(
            f"{prefix}: internal error: {type(e).__name__}: {one_line(str(e))}",
            file=sys.stderr,
        )
        if not debug:
            print(
                f"{prefix}: this is a bug; please report it to {REPORT_TO} with the output "
                f"of the same command run with --debug",
                file=sys.stderr,
            )
        return EXIT_FAILURE


def _close_bars() -> None:
    """A progress bar left open would draw over the message."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        return
    for bar in list(getattr(tqdm.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:
            pass
