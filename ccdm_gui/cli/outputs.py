"""What the commands that write pictures and videos (export, grid) share about their
outputs: a video file checked before anything is computed, and the closing list of
what was written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..export.formats import VideoFormat


def video_file(
    what: str, path: str | os.PathLike, overwrite: bool, folder_must_exist: bool = False
) -> VideoFormat:
    """The format of a video output that can be written: a known suffix this
    installation can encode, and a path ``validate.output_file`` accepts."""
    from ..core import validate
    from ..export import FORMATS, WriteError
    from ..export.video import video_format

    validate.output_file(what, path, overwrite, FORMATS, folder_must_exist=folder_must_exist)
    try:
        return video_format(path)
    except WriteError as e:
        raise validate.ArgumentError(what, f"{path}: {e}") from None


def print_written(paths: Iterable[object]) -> None:
    for p in paths:
        print(f"wrote {p}")
