"""Stopping a computation from outside it, within a second.

The window's worker cancels a comparison when the user presses Cancel or changes a
setting. Between sampler steps the sampler asks; inside one machine step (at N = 60,000
a step takes up to a minute on a CPU) the machines ask at their own pauses: between
chunks of keys, blocks of training images, parts of a patch merge. They ask through
``check``, which reads the question the sampler set for its thread, so no machine
function needs a callback argument, and a machine called outside a sampler (the
command line, the benches) never stops.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class Cancelled(Exception):
    """Raised where a computation pauses when its caller's cancel check says stop."""


_local = threading.local()


@contextlib.contextmanager
def checking(should_cancel: Callable[[], bool] | None) -> Iterator[None]:
    """Make ``check`` in this thread ask ``should_cancel`` during the block."""
    previous = getattr(_local, "ask", None)
    _local.ask = should_cancel
    try:
        yield
    finally:
        _local.ask = previous


def check() -> None:
    """Raise Cancelled if this thread's computation was asked to stop."""
    ask = getattr(_local, "ask", None)
    if ask is not None and ask():
        raise Cancelled()
