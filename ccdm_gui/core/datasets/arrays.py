"""Images stored as numpy arrays: ``.npy`` (images only) or ``.npz`` (images, optional labels).

Loaded with ``allow_pickle=False``: an object array (which would need unpickling) is refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .base import DatasetError

IMAGE_KEYS = ("images", "x", "x_train", "data", "imgs", "arr_0")
LABEL_KEYS = ("labels", "y", "y_train", "targets", "label", "arr_1")
_CH = (1, 3, 4)


def _nhwc(a: np.ndarray, source: str) -> np.ndarray:
    """[N, H, W], [N, H, W, C] or [N, C, H, W] -> [N, H, W, C]."""
    if a.ndim == 3:
        return a[..., None]
    if a.ndim != 4:
        raise DatasetError(
            f"{source}: images must be [N, H, W], [N, H, W, C] or [N, C, H, W]; got {a.shape}"
        )
    last, second = a.shape[3] in _CH, a.shape[1] in _CH
    if second and not last:
        return a.transpose(0, 2, 3, 1)
    if last:
        # Both read as channels only for images of at most 4 pixels a side; channels-last wins.
        return a
    raise DatasetError(f"{source}: cannot tell the channel axis of shape {a.shape} (1, 3 or 4)")


def _pixels_0_255(a: np.ndarray, source: str) -> np.ndarray:
    """Pixel values on the 0..255 scale that prepare_images expects."""
    if a.shape[0] == 0:
        raise DatasetError(f"{source}: contains no images")
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise DatasetError(f"{source}: integer pixels must lie in 0..255, found {lo}..{hi}")
        return a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.floating):
        raise DatasetError(f"{source}: images have dtype {a.dtype}; need uint8 or float")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DatasetError(f"{source}: images contain NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    # The three ranges in use: [-1, 1] (diffusion code), [0, 1] (ToTensor), [0, 255].
    if lo >= -1.0 and hi <= 1.0:
        return (a + 1.0) * 127.5 if lo < 0 else a * 255.0
    if lo >= 0.0 and hi <= 255.0:
        return a
    raise DatasetError(
        f"{source}: float pixels span {lo:g}..{hi:g}; expected [-1, 1], [0, 1] or [0, 255]"
    )


def _labels(y: np.ndarray, n: int, source: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:  # Keras-style [N, 1] column
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DatasetError(f"{source}: labels must be one number per image, got shape {y.shape}")
    if y.shape[0] != n:
        raise DatasetError(f"{source}: {y.shape[0]} labels for {n} images")
    if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{source}: labels have dtype {y.dtype}; need integers")
    if n and y.min() < 0:
        raise DatasetError(f"{source}: negative class label {int(y.min())}")
    return y.astype(np.int64)


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    source = str(path)
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DatasetError(f"{source}: refused or unreadable array file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{source}: corrupt or truncated array file ({e})") from None
    labels = None
    if isinstance(obj, np.ndarray):
        images = obj
    else:
        with obj:
            keys = list(obj.files)
            ikey = next((k for k in IMAGE_KEYS if k in keys), None)
            if ikey is None:
                raise DatasetError(
                    f"{source}: no images array; name it one of {IMAGE_KEYS} (found {keys})"
                )
            lkey = next((k for k in LABEL_KEYS if k in keys and k != ikey), None)
            try:
                images = obj[ikey]
                labels = obj[lkey] if lkey is not None else None
            except ValueError as e:
                raise DatasetError(f"{source}: refused array ({e})") from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise DatasetError(f"{source}: corrupt array inside the archive ({e})") from None
    images = _pixels_0_255(_nhwc(images, source), source)
    if labels is not None:
        labels = _labels(labels, images.shape[0], source)
    return images, labels
