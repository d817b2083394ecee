"""Where the shipped data and models live: a source checkout or a PyInstaller bundle.

The bundle unpacks to ``sys._MEIPASS``; the PyInstaller spec must add ``resources/``
and ``models/`` there under the same names.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_DATASET = Path("datasets") / "mnist"
DEFAULT_MODEL = "mnist_resnet_zeros.safetensors"

# ccdm_gui/core/resources.py -> the repository root is three levels up.
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _roots() -> list[Path]:
    bundle = getattr(sys, "_MEIPASS", None)
    return ([Path(bundle)] if bundle else []) + [_SOURCE_ROOT]


def _find(name: str) -> Path:
    """The first root that has ``name``; when none has it, where a source checkout would."""
    for root in _roots():
        if (root / name).is_dir():
            return root / name
    return _roots()[0] / name


def resources_dir() -> Path:
    return _find("resources")


def models_dir() -> Path:
    return _find("models")


def default_dataset_path() -> Path:
    """The shipped MNIST training set (IDX, gzipped); load it with load_dataset()."""
    return resources_dir() / DEFAULT_DATASET


def default_model_path() -> Path:
    return models_dir() / DEFAULT_MODEL
