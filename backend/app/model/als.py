"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via the ``implicit`` package.

Users are always scored from their history row (factors re-solved against the fitted item
factors), so users the fit never saw - new events, seed items - get personal scores too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from app.data.features import ItemFeatures
from app.model.base import Explanation, history_items, unit_rows
from app.model.itemknn import binary

#: Histories of up to this many rows are solved in NumPy (a request's one user); larger batches by implicit.
FEW_ROWS = 16


class ALSRecommender:
    """Confidence = ``alpha`` on a binary positive (implicit's convention), 1 elsewhere."""

    name: ClassVar[str] = "als"
    max_items: ClassVar[int | None] = None
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = (
        "recalculates the user: one least-squares solve from the updated history (no retraining)"
    )

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 1,
    ):
        if factors < 1 or iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        if regularization < 0 or alpha <= 0:
            raise ValueError("regularization must be >= 0 and alpha > 0")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self.model_: Any = None
        self._item_unit: np.ndarray | None = None  # unit item factors, for explanations
        self._y64: np.ndarray | None = None  # item factors and YtY + reg I, float64, for ``_solve_rows``
        self._yty: np.ndarray | None = None

    def _model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):  # implicit warns at construction when BLAS runs threads of its own
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.num_threads,
            )

    def _use(self, model: Any) -> ALSRecommender:
        self.model_ = model
        self._item_unit = unit_rows(np.asarray(model.item_factors, dtype=np.float32))
        self._y64 = self._yty = None
        return self

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> ALSRecommender:
        model = self._model()
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; nested BLAS threads only slow it
            model.fit(binary(matrix), show_progress=False)
        return self._use(model)

    def restore(self, item_factors: np.ndarray) -> ALSRecommender:
        """The fitted engine from saved item factors (users are always re-solved from their history)."""
        model = self._model()
        model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        model.user_factors = np.zeros((0, self.factors), np.float32)
        return self._use(model)

    def user_factors(self, history: sp.csr_matrix) -> np.ndarray:
        """Least-squares user factors for each history row (same solve as a training step)."""
        if self.model_ is None:
            raise RuntimeError("fit the recommender before scoring")
        h = binary(history)
        if h.shape[0] <= FEW_ROWS:
            return self._solve_rows(h)
        with threadpool_limits(1, "blas"):
            return np.asarray(self.model_.recalculate_user(np.arange(h.shape[0]), h), dtype=np.float32)

    def _solve_rows(self, h: sp.csr_matrix) -> np.ndarray:
        """implicit's own solve (``recalculate_user``), in NumPy: for each row, (YtY + reg I + sum over its
        items of (c - 1) y yT) x = sum of c y, c = alpha. implicit's call costs ~1 ms a row on its own,
        12x this, which is most of a hybrid request (equal to 1e-5, ``test_als.py``)."""
        if self._yty is None:
            y = np.asarray(self.model_.item_factors, dtype=np.float64)
            self._y64, self._yty = y, y.T @ y + self.regularization * np.eye(y.shape[1])
        y, base = self._y64, self._yty
        out = np.zeros((h.shape[0], y.shape[1]), np.float32)
        for r in range(h.shape[0]):
            lo, hi = h.indptr[r], h.indptr[r + 1]
            if lo == hi:
                continue
            yh = y[h.indices[lo:hi]]
            c = self.alpha * h.data[lo:hi].astype(np.float64)
            out[r] = np.linalg.solve(base + yh.T @ ((c - 1.0)[:, None] * yh), yh.T @ c)
        return out

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self.user_factors(history) @ np.asarray(self.model_.item_factors, dtype=np.float32).T

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """The cosine of the ALS item factors between each history item and the item: ALS re-solves the
        user as a whole, so there is no exact additive split of its score; the nearest history item in
        the factor space is what the score is most like."""
        if self._item_unit is None:
            raise RuntimeError("fit the recommender before explaining")
        hist = history_items(history)
        f = self._item_unit
        return Explanation(items, hist, f[hist] @ f[items].T)

    def params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
        }
