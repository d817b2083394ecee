"""Video of a trajectory: MP4 (H.264), GIF (exact palette when a frame allows) or WebM
(VP9). The run's spec and the app version go into the container's metadata."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.atomic import WriteCancelled, WriteError, atomic_file, error_for
from ..core.spec import Comparison
from ..core.view import DEFAULT_VIEW, View
from .compose import Composer, check_frames, grid
from .formats import FORMATS, VideoFormat
from .metadata import export_record, to_json


def encoder_available(codec: str) -> bool:
    import av

    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


def available_formats() -> list[str]:
    """The formats this installation can write (WebM needs a VP9-enabled FFmpeg)."""
    return [n for n, f in FORMATS.items() if f.codec is None or encoder_available(f.codec)]


def video_format(path: str | os.PathLike, fmt: str | None = None) -> VideoFormat:
    name = (fmt or Path(path).suffix.lstrip(".")).lower()
    if name not in FORMATS:
        what = f"format {fmt!r}" if fmt else f"file type {Path(path).suffix or '(none)'!r}"
        raise WriteError(
            f"unknown video {what} for {path}; use one of: " + ", ".join(f".{n}" for n in FORMATS)
        )
    f = FORMATS[name]
    if f.codec is not None and not encoder_available(f.codec):
        raise WriteError(
            f"cannot write {path}: this installation's FFmpeg has no {f.codec} encoder "
            f"for {name}; available formats: {', '.join(available_formats())}"
        )
    return f


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    out = np.zeros((h + h % 2, w + w % 2, 3), np.uint8)
    out[:h, :w] = frame
    # Repeat the edge so the padding row/column is invisible rather than a black line.
    out[h:, :w] = frame[h - 1 :]
    out[:, w:] = out[:, w - 1 : w]
    return out


def _checked(
    frames: Iterable[np.ndarray],
    total: int,
    path: Path,
    on_progress: Callable[[int, int], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if should_cancel is not None and should_cancel():
            raise WriteCancelled(f"export to {path} cancelled")
        yield frame
        if on_progress is not None:
            on_progress(i + 1, total)


def _yuv(frame: np.ndarray):
    import av

    # Area averaging for the half-resolution chroma: enlarged pixels are 2x2-aligned
    # blocks, so their colour survives exactly, where the default bilinear filter bleeds
    # colour across block edges (mean error 3.9 vs 0.8 code values at scale 2).
    rgb = av.VideoFrame.from_ndarray(frame, format="rgb24")
    return rgb.reformat(format="yuv420p", interpolation="AREA")


def _write_av(f, fmt: VideoFormat, frames, fps, quality, hold_frames, title, comment) -> None:
    import av

    options = {"movflags": "+faststart"} if fmt.name == "mp4" else {}
    container = av.open(f, "w", format=fmt.name, options=options)
    failed = True
    try:
        container.metadata["title"] = title
        container.metadata["comment"] = comment
        stream = None
        last = None
        for frame in frames:
            frame = _even(frame)
            if stream is None:
                stream = container.add_stream(fmt.codec, rate=Fraction(fps).limit_denominator(1001))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if fmt.name == "mp4":
                    stream.options = {"crf": str(quality), "preset": "medium"}
                else:
                    stream.options = {
                        "crf": str(quality),
                        "b": "0",
                        "deadline": "good",
                        "cpu-used": "4",
                        "row-mt": "1",
                    }
            elif frame.shape[:2] != (stream.height, stream.width):
                raise WriteError("frames of one video must all have the same size")
            last = frame
            container.mux(stream.encode(_yuv(frame)))
        if stream is None:
            raise WriteError("nothing to export: the trajectory has no steps")
        for _ in range(hold_frames):
            container.mux(stream.encode(_yuv(last)))
        container.mux(stream.encode(None))
        failed = False
    finally:
        try:
            container.close()
        except Exception:
            # Closing writes the trailer; after a failure that can fail again (the disk
            # is still full) and must not hide the first error.
            if not failed:
                raise


def _palette_image(frame: np.ndarray) -> Image.Image:
    """Exact palette when the frame has at most 256 colours (typical: grey images,
    categorical provenance), else a median-cut palette without dithering, which keeps
    enlarged pixels flat."""
    h, w = frame.shape[:2]
    packed = (
        (frame[..., 0].astype(np.uint32) << 16)
        | (frame[..., 1].astype(np.uint32) << 8)
        | frame[..., 2].astype(np.uint32)
    ).reshape(-1)
    colors, index = np.unique(packed, return_inverse=True)
    if len(colors) > 256:
        return Image.fromarray(frame).quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    img = Image.fromarray(index.reshape(h, w).astype(np.uint8), "P")
    rgb = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=1)
    img.putpalette(rgb.astype(np.uint8).tobytes())
    return img


def _write_gif(f, frames, total, fps, hold_s, comment) -> None:
    base = 1000.0 / fps
    durations = [int(round(base))] * total
    durations[-1] = int(round(base + 1000.0 * hold_s))
    images = (_palette_image(fr) for fr in frames)
    first = next(images, None)
    if first is None:
        raise WriteError("nothing to export: the trajectory has no steps")
    first.save(
        f,
        format="GIF",
        save_all=True,
        append_images=images,
        duration=durations,
        loop=0,
        comment=comment.encode(),
        # Pillow's optimize may merge similar palette entries; exactness matters more
        # than a few bytes here.
        optimize=False,
    )


def _write_video(
    path,
    frames,
    total,
    fps,
    quality,
    hold_last,
    fmt,
    overwrite,
    record,
    on_progress,
    should_cancel,
) -> Path:
    path = Path(path)
    vf = video_format(path, fmt)
    if not fps > 0:
        raise WriteError(f"fps must be positive, got {fps}")
    if hold_last < 0:
        raise WriteError(f"hold must be >= 0 seconds, got {hold_last}")
    if vf.quality_range is not None:
        quality = vf.default_quality if quality is None else int(quality)
        lo, hi = vf.quality_range
        if not lo <= quality <= hi:
            raise WriteError(f"quality (CRF) for {vf.name} must be in {lo}..{hi}, got {quality}")
    comment = to_json(record)
    title = record["title"]
    frames = _checked(frames, total, path, on_progress, should_cancel)
    with atomic_file(path, overwrite) as f:
        try:
            if vf.codec is None:
                _write_gif(f, frames, total, fps, hold_last, comment)
            else:
                hold_frames = int(round(hold_last * fps))
                _write_av(f, vf, frames, fps, quality, hold_frames, title, comment)
        except WriteError:
            raise
        except OSError as e:
            raise error_for(e, path) from e
    return path


def _composers(comps: list[Comparison], view: View, layout: str, scale: int):
    """The layout a video is drawn in and a composer per run; a bad option is an
    WriteError, like every other reason a video cannot be written."""
    # A video holds one picture per frame: "panels" there means the bare panels side
    # by side ("strip"), without captions.
    layout = "strip" if layout == "panels" else layout
    try:
        check_frames(layout, scale)
        return layout, [Composer(c, view, scale) for c in comps]
    except ValueError as e:
        raise WriteError(str(e)) from None


def export_video(
    comp: Comparison,
    path: str | os.PathLike,
    view: View = DEFAULT_VIEW,
    fps: float = 4,
    quality: int | None = None,
    hold_last: float = 0.0,
    layout: str = "composite",
    scale: int = 8,
    fmt: str | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Path:
    """Write the trajectory as a video, one step per frame, to ``path``.

    fmt: "mp4", "gif" or "webm" (default: from the suffix). quality: CRF for mp4
    (0..51, default 18) and webm (0..63, default 18), lower is better; ignored for gif.
    hold_last: seconds to keep the last frame on screen. layout: "composite" or
    "strip" ("panels" is taken as "strip"). The file appears complete or not at all.
    """
    layout, (composer,) = _composers([comp], view, layout, scale)
    drawn = _drawn(view, layout, scale, fps, hold_last)
    record = export_record([comp], drawn, title=f"ccdm-gui: {composer.title}")
    frames = (composer.frame(i, layout) for i in range(composer.steps))
    return _write_video(
        path,
        frames,
        composer.steps,
        fps,
        quality,
        hold_last,
        fmt,
        overwrite,
        record,
        on_progress,
        should_cancel,
    )


def export_grid_video(
    comps: list[Comparison],
    path: str | os.PathLike,
    view: View = DEFAULT_VIEW,
    fps: float = 4,
    quality: int | None = None,
    hold_last: float = 0.0,
    layout: str = "composite",
    scale: int = 8,
    fmt: str | None = None,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    columns: int | None = None,
) -> Path:
    """Several comparisons (e.g. seeds) tiled in one video, row-major, each cell the
    frame export_video would write. Runs with fewer steps hold their last frame."""
    if not comps:
        raise WriteError("a grid video needs at least one comparison")
    layout, composers = _composers(comps, view, layout, scale)
    total = max(c.steps for c in composers)
    drawn = _drawn(view, layout, scale, fps, hold_last)
    drawn["columns"] = columns
    seeds = ", ".join(str(c.spec.seed) for c in comps)
    record = export_record(comps, drawn, title=f"ccdm-gui: {len(comps)} runs (seeds {seeds})")
    frames = (
        grid([c.frame(min(i, c.steps - 1), layout) for c in composers], columns)
        for i in range(total)
    )
    return _write_video(
        path,
        frames,
        total,
        fps,
        quality,
        hold_last,
        fmt,
        overwrite,
        record,
        on_progress,
        should_cancel,
    )


def _drawn(view: View, layout: str, scale: int, fps: float, hold_last: float) -> dict:
    """How the video was drawn, as its metadata records it."""
    return {
        "layout": layout,
        "scale": int(scale),
        **view.record(),
        "fps": float(fps),
        "hold_last": float(hold_last),
    }


def read_metadata(path: str | os.PathLike) -> dict:
    """The export record a video carries (from its comment), or {} if it has none."""
    import json

    import av

    with av.open(str(path)) as c:
        meta = {k.lower(): v for k, v in c.metadata.items()}
    try:
        return json.loads(meta.get("comment", ""))
    except ValueError:
        return {}
