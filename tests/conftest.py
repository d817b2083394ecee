"""Shared test setup. Qt, when a test uses it, renders offscreen; torch stays on 2 threads
so that the suite behaves the same on a 2-core CI box and a big workstation."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of tiny tensors: on a busy 2-core box a second OpenMP thread only adds
    barrier stalls (measured 15x slower); the numerics do not depend on threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_dataset():
    """12 random 1x8x8 images in [-1, 1] with labels 0, 1, 2 (four each), fixed seed."""
    from ccdm_gui.core.datasets import Dataset

    g = torch.Generator().manual_seed(1234)
    images = torch.rand(12, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.arange(12) % 3
    return Dataset(images, labels, "tiny", "<tiny_dataset fixture>")
