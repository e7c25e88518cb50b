"""The loop's intervals."""

from __future__ import annotations

import math

import numpy as np

from app.simulate import stats


def test_wilson():
    lo, hi = stats.wilson(50, 100)
    assert math.isclose(lo, 0.4038, abs_tol=1e-3) and math.isclose(hi, 0.5962, abs_tol=1e-3)
    assert stats.wilson(0, 20)[0] == 0.0 and stats.wilson(20, 20)[1] == 1.0
    assert all(math.isnan(x) for x in stats.wilson(0, 0))


def test_bootstrap_intervals():
    rng = np.random.default_rng(0)
    clicks = rng.binomial(10, 0.1, size=500)
    shown = np.full(500, 10)
    lo, hi = stats.bootstrap_ratio(clicks, shown, seed=1)
    assert lo < stats.ratio(clicks, shown) < hi and hi - lo < 0.04
    assert stats.bootstrap_ratio(clicks, shown, seed=1) == (lo, hi)  # seeded
    est, lo, hi = stats.bootstrap_paired_diff(clicks, shown, clicks, shown, seed=1)
    assert est == lo == hi == 0.0
    est, lo, hi = stats.bootstrap_paired_diff(clicks, shown, clicks + 1, shown, seed=1)
    assert math.isclose(est, 0.1) and lo <= est <= hi
