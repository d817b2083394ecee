"""Find the right reader for a path and return a prepared Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import arrays, cifar, folder
from .base import Dataset, DatasetError, prepare_images
from .idx import read_idx
from .known import known_for_path

_ARCHIVES = (".tar.gz", ".tgz", ".tar")


def _idx_pair(path: Path) -> tuple[Path, Path | None]:
    """Images file and its labels file, given either one or their folder."""
    if path.is_dir():
        imgs = sorted(p for p in path.iterdir() if "images" in p.name and "idx3" in p.name)
        train = [p for p in imgs if p.name.startswith("train")]
        if not imgs:
            raise DatasetError(f"{path}: no IDX images file (*images-idx3*) in this folder")
        path = (train or imgs)[0]
    name = path.name
    lab_name = name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    labels = path.with_name(lab_name)
    return path, (labels if labels.exists() and labels != path else None)


def _name_from_path(path: Path, fallback: str) -> str:
    known = known_for_path(path)
    return known.name if known is not None else fallback


def _load_idx(path: Path, image_size, channels, limit) -> Dataset:
    img_path, lab_path = _idx_pair(path)
    raw = read_idx(img_path)
    if raw.ndim != 3:
        raise DatasetError(f"{img_path}: expected a 3-d IDX image array, got shape {raw.shape}")
    labels = None
    if lab_path is not None:
        lab = read_idx(lab_path)
        if lab.ndim != 1 or lab.shape[0] != raw.shape[0]:
            raise DatasetError(
                f"{lab_path}: {lab.shape[0]} labels for {raw.shape[0]} images in {img_path.name}"
            )
        labels = torch.from_numpy(lab[:limit].astype(np.int64))
    images = prepare_images(raw[:limit].astype(np.uint8), image_size, channels, str(img_path))
    name = _name_from_path(img_path, img_path.parent.name or "idx")
    return Dataset(images, labels, name, str(img_path))


def _finish(raw, labels, image_size, channels, name, source, limit) -> Dataset:
    images = prepare_images(raw[:limit], image_size, channels, source)
    lab = None if labels is None else torch.from_numpy(np.asarray(labels[:limit], np.int64))
    return Dataset(images, lab, name, source)


def _load_dir(path: Path, image_size, channels, limit) -> Dataset:
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if any("idx3" in p.name for p in entries):
        return _load_idx(path, image_size, channels, limit)
    batches = cifar.batch_folder(path)
    if batches is not None:
        raw, labels, name = cifar.read_folder(path)
        return _finish(raw, labels, image_size, channels, name, str(batches), limit)
    if not entries:
        raise DatasetError(f"{path}: the folder is empty")
    array_files = sorted(p for p in entries if p.suffix.lower() in (".npz", ".npy"))
    if array_files and not folder.has_images(path):
        if len(array_files) > 1:
            names = ", ".join(p.name for p in array_files[:4])
            raise DatasetError(f"{path}: holds several array files ({names}); open one of them")
        return load_dataset(array_files[0], image_size, channels, limit=limit)
    raw, labels = folder.read_folder(path, image_size, channels, limit)
    return _finish(raw, labels, None, channels, path.name, str(path), None)


def load_dataset(
    path: str | Path,
    image_size: int | None = 32,
    channels: int | None = 1,
    *,
    limit: int | None = None,
) -> Dataset:
    """Read any supported dataset and return images as float32 [N, C, S, S] in [-1, 1].

    Formats: MNIST/Fashion-MNIST IDX (gzipped or not; a file or its folder), CIFAR
    python batches (one file, their folder, ``cifar-10-batches-py`` or the .tar.gz),
    an image folder (class sub-folders give labels), ``.npy``/``.npz`` arrays.
    ``channels`` or ``image_size`` None keeps the data's own. ``limit`` reads only
    the first images (in the order ``subset`` would take them), which keeps a large
    image folder quick to open.
    """
    path = Path(path)
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be >= 1, got {limit}")
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_dir(path, image_size, channels, limit)
    name = path.name.lower()
    if name.endswith((".npz", ".npy")):
        raw, labels = arrays.read_arrays(path)
        return _finish(raw, labels, image_size, channels, path.stem, str(path), limit)
    if name.endswith(_ARCHIVES):
        raw, labels, ds_name = cifar.read_archive(path)
        return _finish(raw, labels, image_size, channels, ds_name, str(path), limit)
    if "idx" in name:
        return _load_idx(path, image_size, channels, limit)
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    # Pickle protocols 2+ start with the PROTO opcode 0x80; that and the batch names
    # are how a CIFAR batch shows itself.
    if cifar.is_batch_name(path.name) or head[:1] == b"\x80":
        raw, labels, ds_name = cifar.read_batch(path)
        return _finish(raw, labels, image_size, channels, ds_name, str(path), limit)
    if path.suffix.lower() in folder.IMAGE_SUFFIXES:
        raise DatasetError(f"{path}: a single image is not a dataset; open its folder instead")
    raise DatasetError(
        f"{path}: unknown dataset format (expected IDX, a CIFAR batch, .npz/.npy, "
        "a .tar.gz of CIFAR batches, or an image folder)"
    )
