"""A folder of PNG frames, one per step, plus a JSON sidecar."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image, PngImagePlugin

from .. import __version__
from ..core.atomic import FolderTransaction, WriteCancelled, WriteError, write_file
from ..core.spec import Comparison
from ..core.view import DEFAULT_VIEW, View
from .compose import Composer, check_frames
from .metadata import export_record, to_json

# Written beside the frames: the run, the view and the files this export wrote (which a
# later export with overwrite removes before writing its own).
SIDECAR = "ccdm_export.json"


def frame_names(steps: int, layout: str, panels: list[str]) -> list[list[str]]:
    """File names per step. Zero-padded so they sort, and ffmpeg's ``frame_%03d.png``
    pattern picks them up: "frame_000.png" for composite/strip, "cnn_000.png",
    "machine_000.png", ... for panels."""
    digits = max(3, len(str(max(steps - 1, 0))))
    if layout == "panels":
        return [[f"{p}_{i:0{digits}d}.png" for p in panels] for i in range(steps)]
    return [[f"frame_{i:0{digits}d}.png"] for i in range(steps)]


def _png_writer(img, info: PngImagePlugin.PngInfo):
    def write(f) -> None:
        # Level 6 is Pillow's default; these flat-coloured frames compress well anyway.
        Image.fromarray(img).save(f, format="PNG", pnginfo=info)

    return write


def export_frames(
    comp: Comparison,
    folder: str | os.PathLike,
    view: View = DEFAULT_VIEW,
    layout: str = "composite",
    scale: int = 8,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> list[Path]:
    """Write every step as PNG into ``folder`` (created if missing) with the sidecar
    ``ccdm_export.json``. Returns the frame paths in step order (for "panels", each
    step's panels in the order cnn, machine, provenance, difference).

    All files appear together or not at all: on cancel (WriteCancelled) or error
    (WriteError) the folder is as it was.
    """
    try:
        check_frames(layout, scale)
        composer = Composer(comp, view, scale)
    except ValueError as e:
        raise WriteError(str(e)) from None
    folder = Path(folder)
    names = frame_names(composer.steps, layout, composer.panels)
    flat = [n for step in names for n in step]
    drawn = {"layout": layout, "scale": int(scale), **view.record()}
    record = export_record([comp], drawn, files=flat + [SIDECAR])
    total = composer.steps
    with FolderTransaction(folder, flat + [SIDECAR], overwrite, manifest=SIDECAR) as tx:
        for step in range(total):
            if should_cancel is not None and should_cancel():
                raise WriteCancelled(f"export to {folder} cancelled")
            frame = composer.frame(step, layout)
            images = [frame[p] for p in composer.panels] if layout == "panels" else [frame]
            info = PngImagePlugin.PngInfo()
            info.add_text("Software", f"ccdm-gui {__version__}")
            info.add_text("Comment", to_json(record["runs"][0]["steps"][step]))
            for name, img in zip(names[step], images, strict=True):
                write_file(tx.path(name), _png_writer(img, info))
            if on_progress is not None:
                on_progress(step + 1, total)
        write_file(tx.path(SIDECAR), lambda f: f.write(to_json(record, indent=1).encode()))
    return [folder / n for n in flat]
