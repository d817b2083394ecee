"""The in-memory dataset type and the conversion every reader shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


class DatasetError(ValueError):
    """A dataset file or folder that cannot be read; the message names it and why."""


@dataclass
class Dataset:
    images: torch.Tensor  # float32 [N, C, H, W] in [-1, 1]
    labels: torch.Tensor | None  # int64 [N] or None
    name: str
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max().item()) + 1

    def of_class(self, label: int | None) -> torch.Tensor:
        if label is None:
            return self.images
        if self.labels is None:
            raise DatasetError(f"{self.source}: has no labels, cannot select class {label}")
        return self.images[self.labels == int(label)]


def prepare_images(
    raw: np.ndarray, image_size: int | None, channels: int | None, source: str
) -> torch.Tensor:
    """Pixels on the 0..255 scale, [N, H, W] or [N, H, W, C] -> float32 [N, C, S, S] in [-1, 1].

    Resizing is bilinear as in the paper's setup (28 -> 32 for MNIST-like data).
    """
    if raw.ndim == 3:
        raw = raw[..., None]
    if raw.ndim != 4:
        raise DatasetError(f"{source}: expected images of shape [N, H, W(, C)], got {raw.shape}")
    if raw.shape[0] == 0:
        raise DatasetError(f"{source}: contains no images")
    if raw.shape[-1] == 4 and channels in (None, 1, 3):
        raw = raw[..., :3]  # RGBA: the alpha channel is not part of the image
    c = raw.shape[-1]
    if channels is not None and c != channels and not (c in (1, 3) and channels in (1, 3)):
        raise DatasetError(
            f"{source}: images have {c} channel(s); the model needs {channels}, "
            "and only grey <-> RGB conversion is supported"
        )
    size = tuple(raw.shape[1:3]) if image_size is None else (image_size, image_size)
    out = torch.empty(raw.shape[0], channels or c, *size)
    # A block of images at a time: the float copies of the whole set (four of them, 1 GB
    # for MNIST) would be the largest memory the app ever holds.
    for i in range(0, raw.shape[0], _PREPARE_BLOCK):
        out[i : i + _PREPARE_BLOCK] = _prepare_block(raw[i : i + _PREPARE_BLOCK], size, channels)
    return out


# Images converted at a time (16 MB of float32 at 32 x 32 x 3).
_PREPARE_BLOCK = 4096


def _prepare_block(raw: np.ndarray, size: tuple[int, int], channels: int | None):
    x = torch.from_numpy(np.ascontiguousarray(raw)).permute(0, 3, 1, 2).float()
    c = x.shape[1]
    if channels is not None and c != channels:
        if c == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:
            # ITU-R 601 luma, the weights PIL's convert("L") uses, so folders and arrays agree.
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * w).sum(dim=1, keepdim=True)
    x = x / 127.5 - 1.0
    if tuple(x.shape[-2:]) != size:
        # antialias only changes downsampling (large photos); 28 -> 32 is plain bilinear.
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x.clamp_(-1.0, 1.0)


def subset(ds: Dataset, n: int | None = None, per_class: int | None = None) -> Dataset:
    """Deterministic subset: the first ``n`` images, or the first ``per_class`` of each class."""
    if per_class is not None:
        if ds.labels is None:
            raise DatasetError(f"{ds.source}: has no labels, cannot take {per_class} per class")
        idx = (
            torch.cat(
                [torch.nonzero(ds.labels == k).flatten()[:per_class] for k in range(ds.num_classes)]
            )
            .sort()
            .values
        )
        return Dataset(ds.images[idx], ds.labels[idx], ds.name, ds.source)
    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise DatasetError(f"subset size must be >= 1, got {n}")
    labels = None if ds.labels is None else ds.labels[:n]
    return Dataset(ds.images[:n], labels, ds.name, ds.source)
