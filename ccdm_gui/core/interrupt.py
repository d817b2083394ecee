"""Ctrl+C while files are being published: the few lines that write a run's files, or a
training checkpoint and its optimiser state, finish before the KeyboardInterrupt lands,
so the user keeps either the old set of files or the complete new one."""

from __future__ import annotations

import contextlib
import signal
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
