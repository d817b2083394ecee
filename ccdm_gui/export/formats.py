"""The export formats and layouts: the one table the exporters, the command line and the
export dialog read (names, labels, encoders and quality ranges)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VideoFormat:
    name: str  # container and file suffix
    label: str  # in the export dialog
    codec: str | None  # FFmpeg encoder; None: written by Pillow
    default_quality: int | None  # CRF
    quality_range: tuple[int, int] | None


FORMATS = {
    f.name: f
    for f in (
        # CRF 18 keeps the hard edges of enlarged pixels; these videos are small anyway.
        VideoFormat("mp4", "MP4 (H.264)", "libx264", 18, (0, 51)),
        VideoFormat("webm", "WebM (VP9)", "libvpx-vp9", 18, (0, 63)),
        VideoFormat("gif", "GIF", None, None, None),
    )
}


@dataclass(frozen=True)
class Layout:
    name: str
    label: str  # in the export dialog
    # A video holds one picture per frame; a layout without it ("panels", one file per
    # panel) is drawn as "strip" there.
    video: bool


LAYOUT_TABLE = (
    Layout("composite", "Composite (panels with captions)", True),
    Layout("panels", "One PNG per panel", False),
    Layout("strip", "Panels side by side, no text", True),
)
LAYOUTS = tuple(lay.name for lay in LAYOUT_TABLE)
