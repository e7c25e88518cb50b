"""The hybrid engine's feature store: per-user and per-item aggregates, and the user x item cross features.

Computed once from the positives a model is fitted on (their weights and timestamps) and kept with the
model (``arrays()`` / ``from_arrays``), so serving reads them instead of recomputing. Time features are
measured from ``reference_ts``, the newest positive of the fitted data, not from the wall clock: a model
ranks the same way the day after training as a month later, and training and serving agree. A history
row that holds more items than the fit saw (what the user did online since) updates the user's
count-based features at once: the new items count as events at the reference time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.popularity import SECONDS_PER_DAY, decay

#: Columns of ``FeatureStore.user`` and ``FeatureStore.item`` (the ranker's feature names use them).
USER_COLUMNS = ("user_count", "user_weight", "user_decayed", "user_days_since")
ITEM_COLUMNS = ("item_count", "item_weight", "item_decayed", "item_days_since", "item_age_days", "item_avg_rating")
CROSS_COLUMNS = ("genre_affinity", "genre_top_share")


@dataclass
class FeatureStore:
    """Aggregates of one fitted matrix; ``user_genres`` rows are the share of the user's positives in each
    genre (n_users x 0 without genres), ``item_genres`` the binary item x genre matrix (dense float32)."""

    reference_ts: int
    half_life_days: float
    user: np.ndarray  # n_users x len(USER_COLUMNS), float32
    item: np.ndarray  # n_items x len(ITEM_COLUMNS), float32
    user_genres: np.ndarray
    item_genres: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """What is saved with the model (``from_arrays`` reads it back)."""
        return {
            "reference_ts": np.array([self.reference_ts], np.int64),
            "half_life_days": np.array([self.half_life_days], np.float64),
            "user": self.user,
            "item": self.item,
            "user_genres": self.user_genres,
            "item_genres": self.item_genres,
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> FeatureStore:
        return cls(
            int(a["reference_ts"][0]),
            float(a["half_life_days"][0]),
            np.asarray(a["user"], np.float32),
            np.asarray(a["item"], np.float32),
            np.asarray(a["user_genres"], np.float32),
            np.asarray(a["item_genres"], np.float32),
        )

    def user_rows(self, users: np.ndarray, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """(user features, genre shares) for ``users`` (fitted indices, -1 for a user the fit did not see)
        scored from ``history``: rows with more items than the fit saw count the extra ones as events at
        the reference time (so their days-since is 0), and the genre shares follow the row."""
        users = np.asarray(users, dtype=np.int64)
        h = sp.csr_matrix(history)
        n_row = np.diff(h.indptr).astype(np.float32)
        w_row = np.asarray(h.sum(axis=1), dtype=np.float32).ravel()
        known = users >= 0
        out = np.zeros((users.size, len(USER_COLUMNS)), np.float32)
        out[known] = self.user[users[known]]
        extra = np.maximum(0.0, n_row - out[:, 0])
        changed = extra > 0
        out[:, 0] = np.where(changed, n_row, out[:, 0])
        out[:, 1] = np.where(changed, w_row, out[:, 1])
        out[:, 2] += extra  # a new event at the reference time weighs 1 in the decayed sum
        out[:, 3] = np.where(changed, 0.0, out[:, 3])
        return out, genre_shares(h, self.item_genres)


def genre_shares(history: sp.csr_matrix, item_genres: np.ndarray) -> np.ndarray:
    """Per row, the share of its positives in each genre (rows sum to 1 over the genres they touch, or
    0 for a row without genres); n_rows x n_genres float32."""
    if item_genres.shape[1] == 0:
        return np.zeros((history.shape[0], 0), np.float32)
    b = sp.csr_matrix(history, dtype=np.float32, copy=True)
    b.data[:] = 1.0
    counts = np.asarray(b @ item_genres, dtype=np.float32)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def build_store(
    matrix: sp.csr_matrix,
    timestamps: sp.csr_matrix,
    features: ItemFeatures | None = None,
    half_life_days: float = 30.0,
) -> FeatureStore:
    """Aggregates of the positives of ``matrix`` (weights) and ``timestamps`` (same pattern, Unix seconds).

    Per user and per item: number of positives, sum of weights, recency-decayed count (an event one
    half-life before the reference time counts half), days from the latest positive to the reference
    time; per item also days since its first positive and the average rating (NaN when unknown)."""
    m = sp.csr_matrix(matrix, dtype=np.float32)
    t = sp.csr_matrix(timestamps)
    if m.nnz != t.nnz or not np.array_equal(m.indices, t.indices):
        raise ValueError("timestamps must have the same entries as the matrix")
    n_users, n_items = m.shape
    ts = np.asarray(t.data, dtype=np.int64)
    ref = int(ts.max()) if ts.size else 0
    rows = np.repeat(np.arange(n_users), np.diff(m.indptr))
    cols = m.indices
    w = np.asarray(m.data, dtype=np.float64)
    dec = decay(ts, ref, half_life_days)
    days = (ref - ts) / SECONDS_PER_DAY

    def per(index: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
        count = np.bincount(index, minlength=n).astype(np.float64)
        weight = np.bincount(index, weights=w, minlength=n)
        decayed = np.bincount(index, weights=dec, minlength=n)
        since = np.full(n, np.inf)
        np.minimum.at(since, index, days)
        oldest = np.full(n, -np.inf)
        np.maximum.at(oldest, index, days)
        return count, weight, decayed, since, oldest

    uc, uw, ud, us, _ = per(rows, n_users)
    ic, iw, idec, isince, iage = per(cols, n_items)
    avg = np.full(n_items, np.nan)
    if features is not None and features.avg_rating is not None:
        avg = np.asarray(features.avg_rating, dtype=np.float64)
    user = np.column_stack([uc, uw, ud, np.where(np.isfinite(us), us, np.nan)]).astype(np.float32)
    item = np.column_stack(
        [ic, iw, idec, np.where(np.isfinite(isince), isince, np.nan), np.where(np.isfinite(iage), iage, np.nan), avg]
    ).astype(np.float32)
    if features is not None and features.genres is not None:
        item_genres = np.asarray(features.genres.todense(), dtype=np.float32)
    else:
        item_genres = np.zeros((n_items, 0), np.float32)
    return FeatureStore(ref, float(half_life_days), user, item, genre_shares(m, item_genres), item_genres)


def cross_features(shares: np.ndarray, item_genres: np.ndarray, items: np.ndarray) -> np.ndarray:
    """User x item genre features for candidate ``items`` (n_rows x n_candidates, -1 = none) of rows with
    genre ``shares``: the share of the user's positives in the item's genres (summed), and the largest
    of those shares; n_rows x n_candidates x 2, float32 (zeros without genres)."""
    n_rows, n_cand = items.shape
    out = np.zeros((n_rows, n_cand, len(CROSS_COLUMNS)), np.float32)
    if item_genres.shape[1] == 0:
        return out
    g = item_genres[np.maximum(items, 0)]  # n_rows x n_cand x n_genres
    weighted = g * shares[:, None, :]
    out[..., 0] = weighted.sum(axis=2)
    out[..., 1] = weighted.max(axis=2)
    out[items < 0] = 0.0
    return out
