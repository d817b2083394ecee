"""Find the right reader for a path and return a prepared Dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import Dataset, DatasetError, prepare_images
from .idx import read_idx


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


def _load_idx(path: Path, image_size, channels) -> Dataset:
    img_path, lab_path = _idx_pair(path)
    raw = read_idx(img_path)
    if raw.ndim != 3:
        raise DatasetError(f"{img_path}: expected a 3-d IDX image array, got shape {raw.shape}")
    labels = None
    if lab_path is not None:
        lab = read_idx(lab_path)
        if lab.shape[0] != raw.shape[0]:
            raise DatasetError(
                f"{lab_path}: {lab.shape[0]} labels for {raw.shape[0]} images in {img_path.name}"
            )
        labels = torch.from_numpy(lab.astype(np.int64))
    images = prepare_images(raw.astype(np.uint8), image_size, channels, str(img_path))
    return Dataset(images, labels, img_path.parent.name or "idx", str(img_path))


def load_dataset(
    path: str | Path, image_size: int | None = 32, channels: int | None = 1
) -> Dataset:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_dir():
        if any("idx3" in p.name for p in path.iterdir()):
            return _load_idx(path, image_size, channels)
        raise DatasetError(f"{path}: no readable dataset found in this folder")
    if "idx" in path.name:
        return _load_idx(path, image_size, channels)
    raise DatasetError(f"{path}: unknown dataset format")
