"""Similarity measures between CNN and machine images, and small robust summaries.

``correlation`` is the paper's headline number (docs/design.md, The paper's metric): Pearson r of
the flattened images. ``cosine_similarity`` is the calibration score (section 3): the
same without centring, because eps vectors are compared as they are.

Everything is computed in float64: calibration separates patch sizes whose eps differ
by 1e-4 relative at t = 1, which float32 rounding would turn into ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _as_batch(x, batched: bool) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    if batched:
        if a.ndim < 1:
            raise ValueError("a batched metric needs a leading batch dimension")
        return a.reshape(a.shape[0], -1)
    return a.reshape(1, -1)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = na * nb
    with np.errstate(invalid="ignore", divide="ignore"):
        # A constant image has no direction; nan says "undefined" instead of a fake 0.
        return np.where(denom > 0, np.einsum("ij,ij->i", a, b) / denom, np.nan)


def correlation_batch(a, b) -> np.ndarray:
    """Per-row Pearson r of [B, ...] arrays (each row flattened over C*H*W)."""
    a, b = _as_batch(a, True), _as_batch(b, True)
    return _cosine_rows(a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True))


def correlation(a, b) -> float:
    """Flatten, subtract each image's global mean, L2-normalise, dot (the paper's metric)."""
    a, b = _as_batch(a, False), _as_batch(b, False)
    return float(
        _cosine_rows(a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True))[0]
    )


def cosine_similarity_batch(a, b) -> np.ndarray:
    """Per-row cosine of [B, ...] arrays, flattened, not centred."""
    return _cosine_rows(_as_batch(a, True), _as_batch(b, True))


def cosine_similarity(a, b) -> float:
    return float(_cosine_rows(_as_batch(a, False), _as_batch(b, False))[0])


def lower_median(values: Sequence) -> float:
    """The lower of the two middle values, so the result is always one of the inputs
    (a calibrated P must stay on the odd grid)."""
    v = np.sort(np.asarray(values).ravel())
    if v.size == 0:
        raise ValueError("median of an empty sequence")
    return v[(v.size - 1) // 2].item()


def quartiles(values: Sequence) -> tuple[float, float, float]:
    """(first quartile, median, third quartile), nan values ignored."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (float("nan"),) * 3
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return float(q1), float(q2), float(q3)


def summary(values: Sequence) -> dict[str, float]:
    q1, med, q3 = quartiles(values)
    v = np.asarray(values, dtype=np.float64).ravel()
    return {
        "median": med,
        "q1": q1,
        "q3": q3,
        "mean": float(np.nanmean(v)) if v.size else med,
        "n": int(np.sum(~np.isnan(v))),
    }
