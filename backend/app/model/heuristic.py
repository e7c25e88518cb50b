"""The service's weighted heuristic ("baseline"): popular, well-rated items in the genres the user likes.

score = 0.55 * log-normalised popularity + 0.25 * average rating (1-5 -> 0-1, unknown = global mean)
      + 0.20 * genre match, over a pool of the most popular items the user has not seen. Items outside
the pool keep their heuristic score minus 1 (all three parts are in [0, 1]), so they rank after the
pool but the ranking stays complete.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation
from app.model.itemknn import binary
from app.model.popularity import item_counts

W_POPULARITY, W_RATING, W_GENRE = 0.55, 0.25, 0.20


def normalised_rating(avg_rating: np.ndarray | None, n_items: int) -> np.ndarray:
    """Average rating mapped 1-5 -> 0-1; items without ratings get the global mean (0.5 when none has one)."""
    if avg_rating is None:
        return np.full(n_items, 0.5)
    r = (np.asarray(avg_rating, dtype=np.float64) - 1.0) / 4.0
    known = np.isfinite(r)
    fill = float(r[known].mean()) if known.any() else 0.5
    return np.clip(np.where(known, r, fill), 0.0, 1.0)


def genre_match(history: sp.csr_matrix, genres: sp.csr_matrix) -> np.ndarray:
    """Users x items in [0, 1]: the mean over an item's genres of the user's liking for that genre.

    A user's liking for a genre = share of their history in it relative to their favourite genre.
    """
    profile = np.asarray((binary(history) @ genres).todense(), dtype=np.float64)  # users x genres
    top = profile.max(axis=1, keepdims=True)
    profile = np.divide(profile, top, out=np.zeros_like(profile), where=top > 0)
    g = sp.csr_matrix(genres, dtype=np.float64)
    n_genres = np.asarray(g.sum(axis=1), dtype=np.float64).ravel()
    summed = np.asarray((g @ profile.T).T)  # users x items
    return np.divide(summed, n_genres[None, :], out=np.zeros_like(summed), where=n_genres[None, :] > 0)


class HeuristicRecommender:
    name: ClassVar[str] = "baseline"
    max_items: ClassVar[int | None] = None
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = "scores the updated history row: its genre profile follows what the user just did"

    def __init__(self, pool_size: int = 200):
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.pool_size = int(pool_size)
        self.popularity_: np.ndarray | None = None
        self.base_: np.ndarray | None = None  # popularity part + rating part, per item
        self.popularity_part_: np.ndarray | None = None
        self.rating_part_: np.ndarray | None = None
        self.genres_: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> HeuristicRecommender:
        n_items = matrix.shape[1]
        counts = item_counts(matrix)
        top = np.log1p(counts.max()) if counts.size and counts.max() > 0 else 1.0
        self.popularity_ = counts
        pop = np.log1p(counts) / top
        rating = normalised_rating(features.avg_rating if features else None, n_items)
        self.popularity_part_ = W_POPULARITY * pop
        self.rating_part_ = W_RATING * rating
        self.base_ = self.popularity_part_ + self.rating_part_
        genres = features.genres if features is not None else None
        if genres is not None and genres.shape[0] != n_items:
            raise ValueError(f"ItemFeatures.genres has {genres.shape[0]} rows for {n_items} items")
        self.genres_ = sp.csr_matrix(genres) if genres is not None else None
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.base_ is None or self.popularity_ is None:
            raise RuntimeError("fit the recommender before scoring")
        n = history.shape[0]
        n_items = self.base_.size
        scores = np.tile(self.base_, (n, 1))
        if self.genres_ is not None and self.genres_.shape[1]:
            scores += W_GENRE * genre_match(history, self.genres_)
        # The pool: the most popular unseen items per user.
        pop = np.tile(self.popularity_, (n, 1))
        seen = binary(history).tocoo()
        pop[seen.row, seen.col] = -np.inf
        if self.pool_size < n_items:
            pool = np.argpartition(-pop, self.pool_size - 1, axis=1)[:, : self.pool_size]
            in_pool = np.zeros((n, n_items), dtype=bool)
            np.put_along_axis(in_pool, pool, True, axis=1)
            scores -= np.where(in_pool, 0.0, 1.0)
        return scores.astype(np.float32)

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """The three weighted parts of each item's score: genre match, popularity and average rating."""
        if self.popularity_part_ is None or self.rating_part_ is None:
            raise RuntimeError("fit the recommender before explaining")
        if self.genres_ is not None and self.genres_.shape[1] and history.nnz:
            match = W_GENRE * genre_match(history, self.genres_)[0][items]
        else:
            match = np.zeros(len(items))
        parts = {"genre_match": match, "popularity": self.popularity_part_[items], "rating": self.rating_part_[items]}
        return Explanation(items, features=parts)

    def params(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "weights": [W_POPULARITY, W_RATING, W_GENRE]}
