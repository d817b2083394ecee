import math

import numpy as np
import pytest
import torch

from ccdm_gui.core.metrics import (
    correlation,
    correlation_batch,
    cosine_similarity,
    cosine_similarity_batch,
    lower_median,
    quartiles,
    summary,
)


def _by_hand(a, b):
    a = [float(v) for v in np.ravel(a)]
    b = [float(v) for v in np.ravel(b)]
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    da = [v - ma for v in a]
    db = [v - mb for v in b]
    na = math.sqrt(sum(v * v for v in da))
    nb = math.sqrt(sum(v * v for v in db))
    return sum(x * y for x, y in zip(da, db, strict=True)) / (na * nb)


def test_correlation_matches_a_hand_computation():
    a = np.array([[[1.0, 2.0], [3.0, 5.0]]])
    b = np.array([[[2.0, 1.0], [4.0, 4.0]]])
    # means 2.75 and 2.75; centred dot 5.75; norms sqrt(8.75) and sqrt(6.75)
    assert correlation(a, b) == pytest.approx(5.75 / math.sqrt(8.75 * 6.75), abs=1e-12)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 8, 8)), rng.normal(size=(3, 8, 8))
    assert correlation(x, y) == pytest.approx(_by_hand(x, y), abs=1e-12)
    assert correlation(x, y) == pytest.approx(np.corrcoef(x.ravel(), y.ravel())[0, 1], abs=1e-12)


def test_correlation_is_invariant_to_offset_and_positive_scale_but_not_sign():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1, 6, 6)), rng.normal(size=(1, 6, 6))
    r = correlation(x, y)
    assert correlation(3.0 * x + 7.0, y - 2.0) == pytest.approx(r, abs=1e-12)
    assert correlation(-x, y) == pytest.approx(-r, abs=1e-12)
    assert correlation(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cosine_is_not_centred():
    a = np.array([1.0, 1.0, 1.0, 2.0])
    b = np.array([1.0, 1.0, 1.0, 1.0])
    assert cosine_similarity(a, b) == pytest.approx(5.0 / (math.sqrt(7.0) * 2.0), abs=1e-12)
    # b is constant: it has no centred direction, so Pearson r is undefined (nan, not 0)
    assert math.isnan(correlation(a, b))


def test_batched_versions_agree_with_single_and_accept_torch():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 1, 5, 5)).astype(np.float32)
    b = rng.normal(size=(4, 1, 5, 5)).astype(np.float32)
    rb = correlation_batch(torch.from_numpy(a), torch.from_numpy(b))
    cb = cosine_similarity_batch(a, b)
    for k in range(4):
        assert rb[k] == pytest.approx(correlation(a[k], b[k]), abs=1e-9)
        assert cb[k] == pytest.approx(cosine_similarity(a[k], b[k]), abs=1e-9)
    with pytest.raises(ValueError):
        correlation(a, b[:, :, :4])


def test_lower_median_is_a_member_and_quartiles():
    assert lower_median([7, 3, 5, 9]) == 5
    assert lower_median([11]) == 11
    assert lower_median(np.array([3, 3, 5])) == 3
    with pytest.raises(ValueError):
        lower_median([])
    q1, med, q3 = quartiles([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")])
    assert (q1, med, q3) == (2.0, 3.0, 4.0)
    s = summary([0.5, 0.7, 0.9])
    assert s["median"] == pytest.approx(0.7) and s["n"] == 3
