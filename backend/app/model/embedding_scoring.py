"""How a trained embedding model scores and explains, with NumPy only: a user is the pooled embeddings of
their items (+ their own), and a score is a dot product.

    user_vec(u) = user_factors[u] + pool(history_u) @ history_factors
    score(u, i) = user_vec(u) . item_factors[i] + item_bias[i]

``pool`` divides the binary history row by n ("mean"), sqrt(n) ("sqrt") or 1 ("none"). Because a
user is built from their items, a user with new events or a few seed items is scored without
retraining. ``EmbeddingScorer`` is the formula behind the contract; the trainable
``EmbeddingRecommender`` (``app.model.embedding``) and ``SavedEmbedding``, a trained model loaded
from its directory (what the service and the registry score with), both use it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation, history_items, unit_rows

POOLINGS = ("mean", "sqrt", "none")


def binary_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Pattern of positive entries as float32 ones (weights do not change the pooled history)."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.data = (m.data > 0).astype(np.float32)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def pool_norm(counts: np.ndarray, pooling: str) -> np.ndarray:
    """Divisor of a history sum with ``counts`` items (1 for empty histories, so they pool to 0)."""
    c = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if pooling == "mean":
        return c
    if pooling == "sqrt":
        return np.sqrt(c)
    if pooling == "none":
        return np.ones_like(c)
    raise ValueError(f"history_pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def pooled_rows(history: sp.spmatrix, pooling: str) -> sp.csr_matrix:
    """Binary history rows divided by the pooling norm: ``pooled_rows(h) @ history_factors`` is the history part."""
    b = binary_csr(history)
    norm = pool_norm(np.diff(b.indptr), pooling)
    return sp.csr_matrix(sp.diags((1.0 / norm).astype(np.float32)) @ b, dtype=np.float32)


def user_vectors(
    users: np.ndarray,
    history: sp.spmatrix,
    user_factors: np.ndarray,
    history_factors: np.ndarray,
    pooling: str,
) -> np.ndarray:
    """User vectors (n x d): own embedding (0 for index -1) plus the pooled history embeddings."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    d = history_factors.shape[1]
    out = np.zeros((users.size, d), dtype=np.float32)
    known = (users >= 0) & (users < user_factors.shape[0])
    out[known] = user_factors[users[known]]
    if history is not None and history.shape[0]:
        if history.shape[0] != users.size:
            raise ValueError(f"history has {history.shape[0]} rows for {users.size} users")
        if history.shape[1] != history_factors.shape[0]:
            raise ValueError(f"history has {history.shape[1]} columns, the model has {history_factors.shape[0]} items")
        out += np.asarray(pooled_rows(history, pooling) @ history_factors, dtype=np.float32)
    return out


def dot_scores(vectors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray) -> np.ndarray:
    """Scores of every item for each user vector: ``vectors @ item_factors.T + item_bias`` (float32)."""
    return (np.asarray(vectors, np.float32) @ item_factors.T + item_bias[None, :]).astype(np.float32, copy=False)


class EmbeddingScorer:
    """Scores and explanations of an embedding model from its four arrays (NumPy only): the formula of
    the module docstring, shared by the trainable ``EmbeddingRecommender`` and by ``SavedEmbedding``."""

    name: ClassVar[str] = "nn"
    max_items: ClassVar[int | None] = None
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = (
        "exact: a user is the pool of their history embeddings, so an updated history scores as if it had been trained on"
    )
    pooling: str = "mean"
    user_factors: np.ndarray | None = None
    history_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    item_bias: np.ndarray | None = None

    def user_vectors(self, users: np.ndarray, history: sp.spmatrix) -> np.ndarray:
        if self.item_factors is None:
            raise RuntimeError("fit the recommender before scoring")
        return user_vectors(users, history, self.user_factors, self.history_factors, self.pooling)

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return dot_scores(self.user_vectors(users, history), self.item_factors, self.item_bias)

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """Each history item adds its pooled history embedding . the item's embedding to the score."""
        if self.item_factors is None:
            raise RuntimeError("fit the recommender before explaining")
        hist = history_items(history)
        return Explanation(items, hist, self._contributions(hist, items))

    def _contributions(self, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[history item, item]: what each history item adds to each item's score."""
        norm = float(pool_norm(np.array([hist.size]), self.pooling)[0])
        return (self.history_factors[hist] @ self.item_factors[items].T) / norm

    def strongest_history_rows(self, history: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """``explain(u, history[r], items[r]).strongest_history()`` for every row r (``items``: rows x n,
        -1 = none, after the row's items): the same products without a CSR row and an ``Explanation``
        per row, which cost more than the products on a 138,000-user model; -1 where the item is -1 or
        the row has no history."""
        if self.item_factors is None:
            raise RuntimeError("fit the recommender before explaining")
        h = sp.csr_matrix(history)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(items.shape, -1, dtype=np.intp)
        counts = np.count_nonzero(items >= 0, axis=1)
        for r in np.flatnonzero((counts > 0) & (np.diff(h.indptr) > 0)):
            lo, hi = h.indptr[r], h.indptr[r + 1]
            hist = h.indices[lo:hi][h.data[lo:hi] > 0].astype(np.intp)
            if hist.size:
                out[r, : counts[r]] = hist[self._contributions(hist, items[r, : counts[r]]).argmax(axis=0)]
        return out


class SavedEmbedding(EmbeddingScorer):
    """A trained model as the service and the registry use it: the arrays of a model directory, scored
    with NumPy (``app.model.artifacts.ModelBundle.scorer``); it cannot be fitted again.

    A model without history embeddings (each user only has their own vector) cannot pool a history:
    it scores a user it was not trained on by the cosine of every item to the mean of the history
    items' unit embeddings, and explains by the same cosines."""

    def __init__(
        self,
        user_factors: np.ndarray,
        history_factors: np.ndarray,
        item_factors: np.ndarray,
        item_bias: np.ndarray,
        pooling: str,
        params: dict[str, Any] | None = None,
    ):
        self.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.history_factors = np.ascontiguousarray(history_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.item_bias = np.ascontiguousarray(item_bias, dtype=np.float32).reshape(-1)
        self.pooling = pooling
        self._params = dict(params or {})
        self.pools_history = bool(np.any(self.history_factors))
        self.item_unit = unit_rows(self.item_factors)

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> SavedEmbedding:
        raise TypeError("a saved model is already trained; retrain with `python -m app.registry.train`")

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if users.size == 1 and history.shape[0] == 1:  # one request: no sparse products (a few NumPy calls)
            return self._score_one(int(users[0]), history_items(history))[None, :]
        scores = super().score(users, history)
        if not self.pools_history:
            for r in np.flatnonzero(users < 0):
                items = history_items(history[r])
                if items.size:
                    scores[r] = self._cosine_to(items)
        return scores

    def _score_one(self, u: int, items: np.ndarray) -> np.ndarray:
        if u < 0 and not self.pools_history:
            return self._cosine_to(items) if items.size else self.item_bias.copy()
        return self.item_factors @ self.user_vector(u, items) + self.item_bias

    def user_vector(self, u: int, items: np.ndarray) -> np.ndarray:
        """User ``u``'s vector (-1: none of their own) with history ``items``: what ``score`` multiplies."""
        vec = (
            self.user_factors[u]
            if 0 <= u < self.user_factors.shape[0]
            else np.zeros(self.item_factors.shape[1], np.float32)
        )
        if items.size:
            norm = float(pool_norm(np.array([items.size]), self.pooling)[0])
            vec = vec + self.history_factors[items].sum(axis=0) / np.float32(norm)
        return vec

    def _cosine_to(self, items: np.ndarray) -> np.ndarray:
        return self.item_unit @ self.item_unit[items].mean(axis=0)

    def _contributions(self, hist: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self.pools_history:
            return super()._contributions(hist, items)
        return self.item_unit[hist] @ self.item_unit[items].T

    def params(self) -> dict[str, Any]:
        return dict(self._params)
