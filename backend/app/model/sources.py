"""Candidate sources of the hybrid engine, behind one interface, and the union of their candidates per user.

A source is any engine of the recommender contract (``score(users, history)``): the embedding model,
item-kNN over the user's items, ALS, EASE (small catalogues only), most popular, trending (each
positive weighted by its recency) and genre neighbours (popular items in the user's genres). Each
proposes its top ``per_source`` unseen items per user; the union goes to the ranker with every
source's score of every candidate and the rank of each source that proposed it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation, Recommender, top_k
from app.model.heuristic import genre_match
from app.model.itemknn import binary
from app.model.popularity import item_counts, trending_scores

#: Every source, in the order of the ranker's features.
SOURCE_NAMES = ("nn", "itemknn", "als", "ease", "popular", "trending", "genre")


class TrendingRecommender:
    """Items by the sum of their positives' recency weights (a positive one half-life old counts half),
    measured from the newest positive of the fitted data."""

    name: ClassVar[str] = "trending"
    max_items: ClassVar[int | None] = None
    online_updates: ClassVar[str] = "none: one list for everyone"

    def __init__(self, half_life_days: float = 30.0):
        self.half_life_days = float(half_life_days)
        self.item_scores_: np.ndarray | None = None

    def fit(
        self, matrix: sp.csr_matrix, features: ItemFeatures | None = None, *, timestamps: sp.csr_matrix | None = None
    ) -> TrendingRecommender:
        if timestamps is None:
            raise ValueError("trending needs the positives' timestamps")
        t = sp.csr_matrix(timestamps)
        self.item_scores_ = trending_scores(t.indices, t.data, matrix.shape[1], self.half_life_days).astype(np.float32)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.item_scores_, (history.shape[0], 1))

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        return Explanation(items, features={"trending": self.item_scores_[items]})

    def params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}


class GenrePopularRecommender:
    """Popular items in the user's genres: log-popularity times how much the user likes the item's genres
    (``heuristic.genre_match``); 0 for every item when the catalogue has no genres."""

    name: ClassVar[str] = "genre"
    max_items: ClassVar[int | None] = None
    online_updates: ClassVar[str] = "scores the updated history row"

    def __init__(self) -> None:
        self.log_pop_: np.ndarray | None = None
        self.genres_: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> GenrePopularRecommender:
        self.log_pop_ = np.log1p(item_counts(matrix)).astype(np.float32)
        self.genres_ = features.genres if features is not None and features.genres is not None else None
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.genres_ is None or not self.genres_.shape[1]:
            return np.zeros((history.shape[0], self.log_pop_.size), np.float32)
        return (genre_match(history, self.genres_) * self.log_pop_[None, :]).astype(np.float32)

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        return Explanation(items, features={"genre_match": self.score(np.array([user]), history)[0][items]})

    def params(self) -> dict[str, Any]:
        return {}


def fit_source(
    name: str,
    engine: Recommender,
    matrix: sp.csr_matrix,
    timestamps: sp.csr_matrix,
    features: ItemFeatures | None,
    recency: sp.csr_matrix | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> Recommender:
    """Fit one source the way it takes its inputs (the embedding model also learns from the order of
    each history, and reports its epochs to ``on_epoch``; trending learns from the timestamps)."""
    if name == "trending":
        return engine.fit(matrix, features, timestamps=timestamps)
    if getattr(engine, "uses_recency", False):
        return engine.fit(matrix, features, on_epoch=on_epoch, recency=recency)
    return engine.fit(matrix, features)


@dataclass
class Candidates:
    """The union of the sources' candidates for a batch of users.

    ``items[r, c]``: candidate c of row r (-1 past the row's candidates); ``scores[s][r, c]``: source s's
    score of it (whether or not s proposed it); ``ranks[s][r, c]``: its place in s's list, 1 = best,
    0 when s did not propose it."""

    items: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]
    #: Each source's scores of every item (n_rows x n_items), as the sources were given.
    full: dict[str, np.ndarray]

    @property
    def first(self) -> np.ndarray:
        """The first source's scores of every item: what orders the items no source proposed."""
        return next(iter(self.full.values()))

    @property
    def n_sources(self) -> np.ndarray:
        """How many sources proposed each candidate."""
        return sum((r > 0).astype(np.int32) for r in self.ranks.values())

    def rows(self, keep: np.ndarray) -> Candidates:
        """The candidates of the rows ``keep`` selects (a boolean mask or indices), without the full
        scores (what features are built from; copying every source's whole rows cost more)."""
        return Candidates(
            self.items[keep],
            {k: v[keep] for k, v in self.scores.items()},
            {k: v[keep] for k, v in self.ranks.items()},
            {},
        )


def gather(
    sources: Mapping[str, Recommender],
    users: np.ndarray,
    history: sp.csr_matrix,
    per_source: int,
    exclude: sp.csr_matrix | None = None,
    items: np.ndarray | None = None,
) -> Candidates:
    """Each source's top ``per_source`` items per row (``exclude``: never proposed, default the history
    row), united in the order sources are given, first proposer first; or, with ``items`` (n_rows x n,
    -1 = none), those items with the same scores and ranks."""
    # one dense mask for every source's cut (top_k converts a sparse exclusion on each call)
    excl = (binary(history) if exclude is None else sp.csr_matrix(exclude)).toarray() > 0
    full: dict[str, np.ndarray] = {}
    proposed: dict[str, np.ndarray] = {}
    for name, engine in sources.items():
        s = np.asarray(engine.score(users, history), dtype=np.float32)
        full[name] = s
        proposed[name] = top_k(s, per_source, exclude=excl)[0]
    n_rows, n_items = history.shape
    if items is None:
        items = union(np.concatenate(list(proposed.values()), axis=1))
    items = np.asarray(items, dtype=np.int64)
    safe = np.maximum(items, 0)
    scores, ranks = {}, {}
    # flat indices into a row-major n_rows x width matrix (4x faster than take_along_axis here)
    row_at = np.arange(n_rows)[:, None]
    for name in sources:
        sc = np.ascontiguousarray(full[name]).ravel().take(safe + row_at * n_items)
        scores[name] = np.where(items >= 0, sc, np.nan).astype(np.float32)
        place = np.zeros((n_rows, n_items + 1), np.int32)  # item -> rank in this source's list (column n_items: none)
        p = proposed[name]
        place.ravel()[np.where(p >= 0, p, n_items) + row_at * (n_items + 1)] = np.arange(1, p.shape[1] + 1)
        place[:, n_items] = 0
        ranks[name] = place.ravel().take(np.where(items >= 0, items, n_items) + row_at * (n_items + 1))
    return Candidates(items, scores, ranks, full)


def union(proposed: np.ndarray) -> np.ndarray:
    """Per row, the distinct items of ``proposed`` (-1 = none) in order of first appearance, padded with -1."""
    rows = []
    for row in proposed:
        row = row[row >= 0]
        _, first = np.unique(row, return_index=True)
        rows.append(row[np.sort(first)])
    out = np.full((len(rows), max((r.size for r in rows), default=0)), -1, dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, : row.size] = row
    return out
