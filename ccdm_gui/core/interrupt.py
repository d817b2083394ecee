"""Ctrl+C on the command line. While files are being published (a run's two files, a
training's checkpoint and optimiser state) it waits until they are out, so the user keeps
the old set or the complete new one; while a comparison is computed, which writes
nothing, it ends the process at once."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT during the block and raise KeyboardInterrupt after it, if one came.
    Outside the main thread (the window's worker) signals never arrive, so it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def abandoned(message: str) -> Iterator[None]:
    """Ctrl+C during the block prints ``message`` and ends the process at once with status
    130. Only for blocks that write nothing (a comparison being computed): there the
    compiled kernels would otherwise finish their share of a step, seconds, before
    Python sees the interrupt, and there is nothing to clean up. A ``deferred`` block
    inside still holds the signal until its files are out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(_signum, _frame) -> None:
        sys.stderr.write(f"\n{message}\n")
        sys.stderr.flush()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
