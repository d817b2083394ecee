"""Frame sequences and video from core.render's pixels. No Qt: the app runs these in a
worker thread and the CLI runs them directly.

    render_frames(comp, view, layout, scale)            frames as arrays
    export_frames(comp, folder, view, ...)              PNG folder + JSON sidecar
    export_video(comp, path, view, fps, ...)            .mp4 / .gif / .webm
    export_grid_video(comps, path, view, ...)           several runs tiled

``view`` is core.view.View (what the panels show); layout and scale say how frames
are drawn.

Long exports take on_progress(i, total) and should_cancel() -> bool; a cancelled or
failed export leaves nothing behind (WriteCancelled / WriteError).
"""

from ..core.atomic import WriteCancelled, WriteError
from .compose import Composer, grid, render_frames
from .formats import FORMATS, LAYOUT_TABLE, LAYOUTS
from .frames import SIDECAR, export_frames, frame_names
from .video import available_formats, export_grid_video, export_video, read_metadata

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "LAYOUT_TABLE",
    "SIDECAR",
    "Composer",
    "WriteCancelled",
    "WriteError",
    "available_formats",
    "export_frames",
    "export_grid_video",
    "export_video",
    "frame_names",
    "grid",
    "read_metadata",
    "render_frames",
]
