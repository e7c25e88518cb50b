"""Most-popular baseline (the same list for everyone), optionally recency-weighted ("trending")."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation

SECONDS_PER_DAY = 86_400.0


def item_counts(matrix: sp.csr_matrix) -> np.ndarray:
    """Number of users with a positive for each item (binary, so heavy users do not dominate)."""
    m = sp.csc_matrix(matrix)
    m.eliminate_zeros()
    return np.diff(m.indptr).astype(np.float64)


def decay(ts: np.ndarray, now: float, half_life_days: float) -> np.ndarray:
    """Weight 2 ** (-age / half-life): an event one half-life old counts half."""
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    age_days = np.maximum(0.0, (float(now) - np.asarray(ts, dtype=np.float64)) / SECONDS_PER_DAY)
    return np.exp2(-age_days / half_life_days)


def trending_scores(
    item_idx: np.ndarray, ts: np.ndarray, n_items: int, half_life_days: float, now: float | None = None
) -> np.ndarray:
    """Sum over events of their recency weight per item (exact, when per-event timestamps are at hand)."""
    ts = np.asarray(ts, dtype=np.int64)
    if now is None:
        now = float(ts.max()) if ts.size else 0.0
    return np.bincount(np.asarray(item_idx, dtype=np.int64), weights=decay(ts, now, half_life_days), minlength=n_items)


class PopularityRecommender:
    """Scores every item by its number of positive users.

    With ``half_life_days`` and ``ItemFeatures.last_ts`` the count is multiplied by the decay of
    the item's latest interaction relative to ``now`` (default: the newest one in the data, so a
    model trained last month still ranks sensibly), which favours items that are still being
    watched (the service's ``/popular?trending=``).
    """

    name: ClassVar[str] = "popular"
    max_items: ClassVar[int | None] = None
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = "none: one list for everyone; what a user did online is only excluded as seen"

    def __init__(self, half_life_days: float | None = None, now: float | None = None):
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        self.half_life_days = half_life_days
        self.now = now
        self.item_scores_: np.ndarray | None = None

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> PopularityRecommender:
        scores = item_counts(matrix)
        if self.half_life_days is not None:
            if features is None or features.last_ts is None:
                raise ValueError("trending popularity needs ItemFeatures.last_ts")
            last = np.asarray(features.last_ts, dtype=np.float64)
            now = self.now if self.now is not None else (float(last.max()) if last.size else 0.0)
            scores = scores * decay(last, now, self.half_life_days)
        self.item_scores_ = scores.astype(np.float32)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.item_scores_ is None:
            raise RuntimeError("fit the recommender before scoring")
        return np.tile(self.item_scores_, (len(users), 1))

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """The whole score is popularity (recency-weighted when trending)."""
        if self.item_scores_ is None:
            raise RuntimeError("fit the recommender before explaining")
        name = "popularity" if self.half_life_days is None else "trending"
        return Explanation(items, features={name: self.item_scores_[items]})

    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days, "now": self.now}
