"""CIFAR-10 / CIFAR-100 "python version" batches, read without running any code.

The batches are pickles, and unpickling an arbitrary pickle can execute anything.
The restricted unpickler admits only the globals that numpy needs to rebuild an
array; every other global is refused before it is looked up, so a malicious
file fails at the first reference to e.g. ``os.system``.
"""

from __future__ import annotations

import io
import pickle
import re
import tarfile
import zlib
from pathlib import Path

import numpy as np

from .base import DatasetError

# ndarray.__reduce__ names its own reconstruct function; taking it from there works on
# numpy 1 (numpy.core) and numpy 2 (numpy._core) without importing a private module.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

_BATCH = re.compile(r"^(data_batch_(\d+)|test_batch)$")
_SIDE = 32


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        # latin1 is what numpy documents for arrays pickled by Python 2 (the official files).
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self._source}: refused to unpickle: it asks for the global "
                f"'{module}.{name}'; a CIFAR batch needs only numpy arrays"
            ) from None

    def persistent_load(self, pid):
        raise DatasetError(f"{self._source}: refused to unpickle: persistent ids are not data")


def safe_unpickle(data: bytes, source: str):
    """Unpickle plain data (dict, list, str, bytes, numbers, numpy arrays) and nothing else."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except DatasetError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise DatasetError(f"{source}: not a readable pickle ({type(e).__name__}: {e})") from None
    except Exception as e:  # numpy's __setstate__ raises assorted errors on corrupt state
        raise DatasetError(f"{source}: corrupt pickle ({type(e).__name__}: {e})") from None


def _text_keys(d: dict) -> dict:
    # Batches re-pickled under Python 3 with encoding='bytes' carry b'data' style keys.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def parse_batch(obj, source: str) -> tuple[np.ndarray, np.ndarray, str]:
    """A batch dict -> (uint8 images [N, 32, 32, 3], int64 labels [N], dataset name)."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{source}: not a CIFAR batch (the pickle holds a {type(obj).__name__})")
    d = _text_keys(obj)
    if "data" not in d:
        raise DatasetError(f"{source}: not a CIFAR batch (no 'data' entry; has {sorted(d)[:5]})")
    if "labels" in d:
        labels_raw, name = d["labels"], "cifar10"
    elif "fine_labels" in d:
        labels_raw, name = d["fine_labels"], "cifar100"
    else:
        raise DatasetError(f"{source}: not a CIFAR batch (no 'labels' or 'fine_labels' entry)")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{source}: not a CIFAR batch ('data' is {kind}, not uint8 pixels)")
    if data.ndim != 2 or data.shape[1] != 3 * _SIDE * _SIDE:
        raise DatasetError(
            f"{source}: not a CIFAR batch ('data' has shape {data.shape}, expected [N, 3072])"
        )
    try:
        labels = np.asarray(labels_raw, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f"{source}: CIFAR labels are not integers") from None
    if labels.shape[0] != data.shape[0]:
        raise DatasetError(f"{source}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{source}: negative class label {int(labels.min())}")
    # Rows are the R, G and B planes of a 32x32 image, one after the other.
    images = data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    return images, labels, name


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray, str]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror or e})") from None
    return parse_batch(safe_unpickle(raw, str(path)), str(path))


def is_batch_name(name: str) -> bool:
    return _BATCH.match(name) is not None


def _batch_order(names: list[str]) -> list[str]:
    """The training batches in numeric order, or the test batch when only that exists."""
    train = [n for n in names if n.startswith("data_batch_")]
    if train:
        return sorted(train, key=lambda n: int(_BATCH.match(n).group(2)))
    return [n for n in names if n == "test_batch"]


def _concat(parts: list[tuple[np.ndarray, np.ndarray, str]], source: str):
    names = {p[2] for p in parts}
    if len(names) > 1:
        raise DatasetError(f"{source}: mixes CIFAR-10 and CIFAR-100 batches")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), names.pop()


def batch_folder(path: Path) -> Path | None:
    """The folder that holds the batches: ``path`` itself or its ``cifar-*-batches-py``."""
    for folder in (path, *sorted(path.glob("cifar-*-batches-py"))):
        if folder.is_dir() and any(is_batch_name(p.name) for p in folder.iterdir()):
            return folder
    return None


def read_folder(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    folder = batch_folder(path)
    if folder is None:
        raise DatasetError(f"{path}: no CIFAR batches (data_batch_*, test_batch) in this folder")
    names = _batch_order([p.name for p in folder.iterdir() if p.is_file()])
    return _concat([read_batch(folder / n) for n in names], str(folder))


def read_archive(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """The batches straight from the downloaded ``cifar-10-python.tar.gz``, nothing extracted."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {
                Path(m.name).name: m
                for m in tar.getmembers()
                if m.isfile() and is_batch_name(Path(m.name).name)
            }
            if not members:
                raise DatasetError(f"{path}: archive holds no CIFAR batches")
            parts = []
            for n in _batch_order(list(members)):
                src = f"{path}:{members[n].name}"
                raw = tar.extractfile(members[n]).read()
                parts.append(parse_batch(safe_unpickle(raw, src), src))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DatasetError(f"{path}: corrupt or truncated archive ({e})") from None
    return _concat(parts, str(path))
