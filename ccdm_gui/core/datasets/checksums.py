"""Known-good checksums of the shipped data, so a damaged install is reported, not trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .base import DatasetError

# The canonical MNIST training files as published by LeCun, Cortes and Burges (the same
# values torchvision checks); resources/datasets/mnist ships these two.
MNIST_TRAIN_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
}


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_checksums(folder: str | Path, expected: dict[str, str] = MNIST_TRAIN_MD5) -> None:
    """Raise DatasetError naming every file that is missing or differs from ``expected``."""
    folder = Path(folder)
    problems = []
    for name, want in expected.items():
        p = folder / name
        if not p.is_file():
            problems.append(f"{name} is missing")
            continue
        got = md5sum(p)
        if got != want:
            problems.append(f"{name} has md5 {got}, expected {want}")
    if problems:
        raise DatasetError(f"{folder}: damaged dataset: " + "; ".join(problems))
