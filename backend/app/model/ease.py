"""EASE (Steck 2019): a closed-form item-item linear model with an L2 penalty and a zero diagonal."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.base import Explanation, history_items
from app.model.itemknn import binary


class EASERecommender:
    """B = I - P diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1; score = history @ B.

    The item x item inverse is dense, so the catalogue size is capped (``max_items``) with a clear
    error instead of running out of memory: at 20,000 items fitting takes about 6.4 GB (two float64
    matrices) and the fitted weights 1.6 GB, in training and in the service alike.
    """

    name: ClassVar[str] = "ease"
    max_items: ClassVar[int | None] = 20_000
    #: What the engine does with a history that changed since it was fitted (online actions).
    online_updates: ClassVar[str] = (
        "scores the updated history row through its item-item weights, exactly as a trained user"
    )

    def __init__(self, l2: float = 200.0):
        if l2 <= 0:
            raise ValueError("l2 (lambda) must be positive")
        self.l2 = float(l2)
        self.weights_: np.ndarray | None = None

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> EASERecommender:
        x = binary(matrix)
        n_items = x.shape[1]
        if n_items > self.max_items:
            raise ValueError(
                f"EASE needs a dense {n_items}x{n_items} inverse; it is fitted on at most {self.max_items} items "
                "(filter the catalogue, or use another engine)"
            )
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        gram[np.diag_indices(n_items)] += self.l2
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))[None, :]
        b[np.diag_indices(n_items)] = 0.0
        self.weights_ = b.astype(np.float32)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if self.weights_ is None:
            raise RuntimeError("fit the recommender before scoring")
        return np.asarray(binary(history) @ self.weights_, dtype=np.float32)

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """Each history item contributes its learned weight towards the item (the terms the score sums)."""
        if self.weights_ is None:
            raise RuntimeError("fit the recommender before explaining")
        hist = history_items(history)
        return Explanation(items, hist, self.weights_[np.ix_(hist, items)])

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2}
