"""Dataset readers. Every reader returns images as float32 [N, C, H, W] in [-1, 1]."""

from .base import Dataset, DatasetError, prepare_images, subset
from .loader import load_dataset

__all__ = ["Dataset", "DatasetError", "load_dataset", "prepare_images", "subset"]
