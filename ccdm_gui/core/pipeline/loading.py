"""What a run reads from disk, the model and the training images, and the caches that
keep them between runs.

The caches are one explicit object, ``CACHES``: each entry is keyed by the absolute
path and the file's change stamp, so a checkpoint rewritten by training or calibration,
or a dataset that changed, is read again on the next call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import loaders
from ..checkpoint import LoadedModel, ModelInfo
from ..datasets import Dataset, DatasetError, load_dataset
from ..spec import RunSpec
from .lru import LRU, change_stamp


@dataclass
class DiskCaches:
    # Loading a model is cheap next to a run, but the window asks on every control change.
    models: LRU = field(default_factory=lambda: LRU(4))
    infos: LRU = field(default_factory=lambda: LRU(16))
    # A full MNIST at 32x32 is 245 MB, so only a couple of decoded datasets are kept.
    datasets: LRU = field(default_factory=lambda: LRU(2))
    training_sets: LRU = field(default_factory=lambda: LRU(8))

    def clear(self) -> None:
        for lru in (self.models, self.infos, self.datasets, self.training_sets):
            lru.clear()


CACHES = DiskCaches()


def model_info(path: str) -> ModelInfo:
    """Metadata only (no weights), cached like load_model."""
    ap = os.path.abspath(path)
    key = (ap, loaders.change_stamp(ap))
    hit = CACHES.infos.get(key)
    if hit is None:
        hit = loaders.read_info(ap)
        CACHES.infos.put(key, hit)
    return hit


def load_model(path: str, device: str = "cpu") -> LoadedModel:
    """Load a model (any format core.loaders opens), cached by (absolute path, change
    stamp of the model and its calibration, device)."""
    ap = os.path.abspath(path)
    key = (ap, loaders.change_stamp(ap), str(device))
    hit = CACHES.models.get(key)
    if hit is None:
        hit = loaders.open_model(ap, device)
        CACHES.models.put(key, hit)
    return hit


@dataclass
class TrainingSet:
    images: torch.Tensor  # [N, C, H, W] on the run's device
    indices: np.ndarray  # int64 [N]: position -> index in the full dataset file
    dataset: Dataset  # the whole file, images on the CPU

    @property
    def labels(self) -> np.ndarray | None:
        """int64 [N] class label of each image; None if the dataset has none."""
        if self.dataset.labels is None:
            return None
        return self.dataset.labels.numpy()[self.indices].astype(np.int64)


def _load_full(path: str, image_size: int, channels: int) -> Dataset:
    ap = os.path.abspath(path)
    key = (ap, change_stamp(ap), image_size, channels)
    ds = CACHES.datasets.get(key)
    if ds is None:
        ds = load_dataset(ap, image_size, channels)
        CACHES.datasets.put(key, ds)
    return ds


def load_training_images(spec: RunSpec, info: ModelInfo) -> TrainingSet:
    """The first ``spec.subset`` images of the dataset or, with ``spec.label`` set, the
    first ``spec.subset`` images of that class (the class-conditional machine of the paper
    sees only its class; a subset of the class keeps it as large as an unconditional
    machine's), prepared to the model's image size and channels."""
    ap = os.path.abspath(spec.dataset)
    key = (
        ap,
        change_stamp(ap),
        info.image_size,
        info.channels,
        spec.subset,
        spec.label,
        spec.device,
    )
    hit = CACHES.training_sets.get(key)
    if hit is not None:
        return hit
    ds = _load_full(spec.dataset, info.image_size, info.channels)
    want = (info.channels, info.image_size, info.image_size)
    if tuple(ds.images.shape[1:]) != want:
        raise DatasetError(
            f"{spec.dataset}: images are {tuple(ds.images.shape[1:])} (C, H, W) but the "
            f"model needs {want}"
        )
    if spec.subset is not None and spec.subset < 1:
        raise ValueError(f"subset size must be >= 1, got {spec.subset}")
    idx = np.arange(len(ds), dtype=np.int64)
    if spec.label is not None:
        if ds.labels is None:
            raise DatasetError(f"{spec.dataset}: has no labels, cannot select class {spec.label}")
        idx = idx[(ds.labels == int(spec.label)).numpy()]
        if idx.size == 0:
            present = sorted(set(ds.labels.tolist()))
            raise DatasetError(
                f"{spec.dataset}: no image of class {spec.label} (classes present: {present})"
            )
    if spec.subset is not None:
        idx = idx[: int(spec.subset)]
    if spec.label is None:  # the first images: a view, not a copy (245 MB for MNIST)
        images = ds.images[: len(idx)].to(spec.device)
    else:
        images = ds.images[torch.from_numpy(idx)].to(spec.device)
    ts = TrainingSet(images=images, indices=idx, dataset=ds)
    CACHES.training_sets.put(key, ts)
    return ts
