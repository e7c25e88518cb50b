"""Negative sampling for implicit feedback: items a user has no positive for, drawn per batch.

Candidates are drawn for the whole batch at once (uniform, or by popularity ``count ** 0.75`` as in
word2vec), checked against the user's CSR row with one ``searchsorted`` over the sorted
``user * n_items + item`` keys, and only the rejected slots are redrawn. Memory stays at the size of
one batch plus two arrays of length nnz; nothing per user-item pair is ever built in Python.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

Strategy = Literal["uniform", "popularity"]
STRATEGIES = ("uniform", "popularity")
POPULARITY_POWER = 0.75
MAX_ROUNDS = 64  # rejection rounds before the few remaining slots are filled exactly


class NegativeSampler:
    """``sample(user_idx)`` -> int32 (len(user_idx), num_negatives), never a positive of that user.

    Reproducible: the same matrix, seed and sequence of calls give the same draws.
    """

    def __init__(self, matrix: sp.spmatrix, num_negatives: int, strategy: Strategy = "uniform", seed: int | None = 0):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        csr = sp.csr_matrix(matrix)
        csr.sort_indices()
        self.n_users, self.n_items = csr.shape
        self.num_negatives = int(num_negatives)
        self.strategy = strategy
        self.rng = np.random.default_rng(seed)
        self._indptr = csr.indptr.astype(np.int64)
        self._indices = csr.indices.astype(np.int64)
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self._indptr))
        self._keys = rows * self.n_items + self._indices  # sorted: CSR rows in order, columns sorted
        self._row_nnz = np.diff(self._indptr)
        self._cdf: np.ndarray | None = None
        if strategy == "popularity":
            counts = np.bincount(self._indices, minlength=self.n_items).astype(np.float64)
            p = counts**POPULARITY_POWER
            if p.sum() == 0:
                p[:] = 1.0
            self._cdf = np.cumsum(p / p.sum())
            self._cdf[-1] = 1.0
            self._probs = p / p.sum()

    def _draw(self, size: int) -> np.ndarray:
        if self._cdf is None:
            return self.rng.integers(0, self.n_items, size=size, dtype=np.int64)
        return np.minimum(np.searchsorted(self._cdf, self.rng.random(size), side="right"), self.n_items - 1)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is (users[k], items[k]) a stored entry of the matrix."""
        if self._keys.size == 0:
            return np.zeros(np.shape(items), dtype=bool)
        q = users.astype(np.int64) * self.n_items + items
        pos = np.minimum(np.searchsorted(self._keys, q), self._keys.size - 1)
        return self._keys[pos] == q

    def sample(self, user_idx: np.ndarray) -> np.ndarray:
        users = np.asarray(user_idx, dtype=np.int64).reshape(-1)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise IndexError(f"user indices must be in 0..{self.n_users - 1}")
        full = users[self._row_nnz[users] >= self.n_items]
        if full.size:
            raise ValueError(f"user {int(full[0])} has a positive for every item: no negative to sample")
        k = self.num_negatives
        rows = np.repeat(users, k)
        out = self._draw(rows.size)
        bad = np.flatnonzero(self.is_positive(rows, out))
        for _ in range(MAX_ROUNDS):
            if bad.size == 0:
                break
            out[bad] = self._draw(bad.size)
            bad = bad[self.is_positive(rows[bad], out[bad])]
        for slot in bad:  # users with almost every item (or every popular item) as positives
            out[slot] = self._exact(int(rows[slot]))
        return out.reshape(users.size, k).astype(np.int32)

    def _exact(self, user: int) -> int:
        """One draw from the user's complement, by the strategy's weights (uniform if they are all 0)."""
        allowed = np.ones(self.n_items, dtype=bool)
        allowed[self._indices[self._indptr[user] : self._indptr[user + 1]]] = False
        candidates = np.flatnonzero(allowed)
        if self._cdf is not None:
            w = self._probs[candidates]
            if w.sum() > 0:
                return int(self.rng.choice(candidates, p=w / w.sum()))
        return int(self.rng.choice(candidates))
