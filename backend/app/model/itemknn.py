"""Item-item cosine k-nearest-neighbours on the binary co-occurrence matrix."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation, best_k, history_items


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 wherever the matrix has a positive entry (implicit feedback without weights)."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.data = (m.data > 0).astype(np.float32)
    m.eliminate_zeros()
    return m


def cosine_neighbours(
    x: sp.csr_matrix, neighbours: int, shrink: float = 0.0, block_floats: int = 8_000_000
) -> sp.csr_matrix:
    """Items x items similarity W with, in each column j, only the ``neighbours`` items most similar to j.

    sim(i, j) = |U_i & U_j| / (sqrt(|U_i| |U_j|) + shrink); the diagonal is zero; equal similarities
    at the cut go to the lower item index. Computed in column blocks so memory stays bounded for large
    catalogues.
    """
    x = sp.csc_matrix(x, dtype=np.float32)
    n_items = x.shape[1]
    norms = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float64).ravel())
    xt = x.T.tocsr()
    k = max(0, min(int(neighbours), n_items - 1))
    block = max(1, block_floats // max(1, n_items))
    rows, cols, vals = [], [], []
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        # one row per item of the block, so its best neighbours are a per-row top-k (a heap, ``best_k``)
        co = np.asarray((xt[start:stop] @ x).todense(), dtype=np.float64)  # b x n_items
        denom = norms[start:stop, None] * norms[None, :] + shrink
        sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
        if k == 0:
            continue
        top = best_k(sim.astype(np.float32), k) if k < n_items else np.tile(np.arange(n_items), (stop - start, 1))
        top_vals = np.take_along_axis(sim, top, axis=1)
        keep = top_vals > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(np.arange(start, stop)[:, None], top.shape)[keep])
        vals.append(top_vals[keep])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
    )


class ItemKNNRecommender:
    """score(u, j) = sum of cosine(i, j) over the items i in u's history that are among j's neighbours."""

    name: ClassVar[str] = "itemknn"
    max_items: ClassVar[int | None] = None
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = (
        "scores the updated history row: sums of item-item similarities of every history item"
    )

    def __init__(self, neighbours: int = 100, shrink: float = 0.0):
        if neighbours < 1:
            raise ValueError("neighbours must be >= 1")
        if shrink < 0:
            raise ValueError("shrink must be >= 0")
        self.neighbours = int(neighbours)
        self.shrink = float(shrink)
        self.similarity_: sp.csr_matrix | None = None

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> ItemKNNRecommender:
        self.similarity_ = cosine_neighbours(binary(matrix), self.neighbours, self.shrink)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.similarity_ is None:
            raise RuntimeError("fit the recommender before scoring")
        return np.asarray((binary(history) @ self.similarity_).todense(), dtype=np.float32)

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """Each history item contributes its cosine to the item (the terms the score sums)."""
        if self.similarity_ is None:
            raise RuntimeError("fit the recommender before explaining")
        hist = history_items(history)
        contributions = np.asarray(self.similarity_[hist][:, items].todense())
        return Explanation(items, hist, contributions)

    def strongest_history_rows(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """``explain(u, history[r], items[r]).strongest_history()`` for every row r at once (``items``: rows
        x n, -1 = none): per entry, the history item most similar to it, the first in the row's order on
        ties as ``argmax`` picks; -1 where the item is -1 or the row has no history."""
        if self.similarity_ is None:
            raise RuntimeError("fit the recommender before explaining")
        h = sp.csr_matrix(history)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(items.shape, -1, dtype=np.intp)
        positive = h.data > 0
        row_of = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))[positive]
        hist = h.indices[positive].astype(np.intp)
        if not hist.size or not items.size:
            return out
        targets = items[row_of]  # one row per history entry: its user's items
        sims = np.asarray(self.similarity_[np.repeat(hist, items.shape[1]), np.maximum(targets, 0).ravel()])
        sims = sims.reshape(targets.shape)
        new_row = np.r_[True, row_of[1:] != row_of[:-1]]
        starts, segment = np.flatnonzero(new_row), np.cumsum(new_row) - 1  # each row's entries, in order
        best = np.maximum.reduceat(sims, starts, axis=0)
        entry = np.where(sims == best[segment], np.arange(len(hist))[:, None], len(hist))
        first = np.minimum.reduceat(entry, starts, axis=0)  # the row's first entry at its maximum
        rows = row_of[starts]
        out[rows] = np.where(items[rows] >= 0, hist[first], -1)
        return out

    def params(self) -> dict[str, Any]:
        return {"neighbours": self.neighbours, "shrink": self.shrink}
