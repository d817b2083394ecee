"""Shared test setup. Qt, when a test uses it, renders offscreen; torch stays on 2 threads
so that the suite behaves the same on a 2-core CI box and a big workstation."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_dataset():
    """12 random 1x8x8 images in [-1, 1] with labels 0, 1, 2 (four each), fixed seed."""
    from ccdm_gui.core.datasets import Dataset

    g = torch.Generator().manual_seed(1234)
    images = torch.rand(12, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.arange(12) % 3
    return Dataset(images, labels, "tiny", "<tiny_dataset fixture>")
