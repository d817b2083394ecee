"""Files replaced in one step (saved runs, checkpoints, JSON results): a reader sees the
old file or the new one, never half a file, and a failed write leaves no temporary."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path`` for the block to write; renamed over ``path``
    when the block succeeds, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; a saved run, or a checkpoint that ships in a package,
        # must get the usual umask-based mode like any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, write: Callable) -> None:
    """``write(fileobj)`` into a temporary file beside ``path``, then rename over it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
