"""Image folders: one sub-folder per class (labels), or a flat folder (CelebA-style, no labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in it
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def has_images(folder: Path) -> bool:
    return any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*") if not p.name.startswith(".")
    )


def list_images(path: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Files in load order, their labels (None for a flat folder) and the class names.

    Classes are the sub-folders that hold images, sorted by name; label k is the
    k-th of them, as in torchvision's ImageFolder.
    """
    classes = sorted(
        d.name
        for d in path.iterdir()
        if d.is_dir() and not d.name.startswith(".") and has_images(d)
    )
    loose = _images_in(path, recursive=False)
    if classes and loose:
        raise DatasetError(
            f"{path}: mixes loose images ({loose[0].name}, ...) with class folders "
            f"({classes[0]}, ...); use one layout"
        )
    if loose:
        return loose, None, []
    if not classes:
        raise DatasetError(f"{path}: contains no images (PNG or JPEG) and no dataset files")
    files, labels = [], []
    for k, name in enumerate(classes):
        found = _images_in(path / name, recursive=True)
        files += found
        labels += [k] * len(found)
    return files, labels, classes


def _read_one(p: Path, mode: str | None, size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()  # decode now, so a truncated file fails here, naming itself
            target = mode or ("L" if im.mode in _GRAY_MODES else "RGB")
            im = im.convert(target)
            if size is not None:
                w, h = im.size
                if w != h:
                    # Centre crop to a square first; a plain resize would squash faces.
                    s = min(w, h)
                    left, top = (w - s) // 2, (h - s) // 2
                    im = im.crop((left, top, left + s, top + s))
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"{p}: unreadable image ({e})") from None
    return arr if arr.ndim == 3 else arr[..., None]


def read_folder(
    path: Path, image_size: int | None, channels: int | None, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 [N, S, S, C] already at the model's size (resized one by one, which keeps a
    folder of large photos from needing all of them in memory at full size)."""
    if channels not in (None, 1, 3):
        raise DatasetError(
            f"{path}: image folders give 1 or 3 channels; the model needs {channels}"
        )
    files, labels, _ = list_images(path)
    if limit is not None:
        files, labels = files[:limit], (labels[:limit] if labels is not None else None)
    mode = {1: "L", 3: "RGB", None: None}[channels]
    arrays = [_read_one(p, mode, image_size) for p in files]
    if mode is None:
        # Mixed grey and colour files: promote the grey ones so that they stack.
        c = max(a.shape[2] for a in arrays)
        arrays = [np.repeat(a, c, axis=2) if a.shape[2] != c else a for a in arrays]
    first = arrays[0].shape
    for p, a in zip(files, arrays, strict=True):
        if a.shape != first:
            raise DatasetError(
                f"{p}: size {a.shape[1]}x{a.shape[0]} differs from {files[0].name} "
                f"({first[1]}x{first[0]}); give an image size to resize them"
            )
    lab = np.asarray(labels, dtype=np.int64) if labels is not None else None
    return np.stack(arrays), lab
