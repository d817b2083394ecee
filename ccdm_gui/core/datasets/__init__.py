"""Dataset readers. Every reader returns images as float32 [N, C, H, W] in [-1, 1]."""

from .base import Dataset, DatasetError, prepare_images, subset
from .checksums import MNIST_TRAIN_MD5, verify_checksums
from .loader import load_dataset

__all__ = [
    "MNIST_TRAIN_MD5",
    "Dataset",
    "DatasetError",
    "load_dataset",
    "prepare_images",
    "subset",
    "verify_checksums",
]
