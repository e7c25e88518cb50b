"""Confidence intervals for the loop's figures.

* PaC of a round (share of lists with at least one positive engagement): lists are independent
  (one per user), so a Wilson score interval.
* CTR of a round (clicked items / shown items): the items of one list are not independent (one
  user, one visit), so a percentile bootstrap over lists of the ratio of sums.
* Over many rounds, and the difference between two arms: a bootstrap over users (every user's lists
  stay together); the difference is paired, the same resampled users in both arms.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
N_BOOT = 1000


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial share; (nan, nan) for n == 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def ratio(num: np.ndarray, den: np.ndarray) -> float:
    total = float(np.sum(den))
    return float(np.sum(num)) / total if total > 0 else math.nan


def bootstrap_ratio(
    num: np.ndarray, den: np.ndarray, seed: int, n_boot: int = N_BOOT, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of sum(num) / sum(den) over clusters (rows) resampled with replacement."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if len(num) == 0 or den.sum() <= 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    lo, hi = np.nanquantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def bootstrap_paired_diff(
    num_a: np.ndarray,
    den_a: np.ndarray,
    num_b: np.ndarray,
    den_b: np.ndarray,
    seed: int,
    n_boot: int = N_BOOT,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """(estimate, lo, hi) of ratio(b) - ratio(a), rows paired (row i is the same user in both)."""
    arrays = [np.asarray(x, dtype=np.float64) for x in (num_a, den_a, num_b, den_b)]
    n = len(arrays[0])
    if n == 0 or any(len(x) != n for x in arrays):
        raise ValueError("paired arrays must be non-empty and of equal length")
    estimate = ratio(arrays[2], arrays[3]) - ratio(arrays[0], arrays[1])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        a = arrays[0][idx].sum(axis=1) / arrays[1][idx].sum(axis=1)
        b = arrays[2][idx].sum(axis=1) / arrays[3][idx].sum(axis=1)
    lo, hi = np.nanquantile(b - a, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (estimate, float(lo), float(hi))
