"""Evaluate the candidate, the production model and the baselines on one validation split.

The production model was fitted on other data, so its user and item indices differ from the split's.
``Remapped`` translates: a user's history row is moved into the production model's item space, the
model scores its own catalogue, and the scores come back in the split's item order; items the
production model does not know get ``-inf`` (it could never recommend them). Every model is then
scored by ``app.eval.evaluate.evaluate`` on the same users, fitted rows and held-out rows.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.data.idmap import IdMap
from app.eval.evaluate import evaluate
from app.eval.splits import Split
from app.model.base import Recommender


class Remapped:
    """A fitted scorer seen through another dataset's user and item indices (the ``Recommender.score`` contract)."""

    name: ClassVar[str] = "remapped"

    def __init__(self, scorer: Any, model_users: IdMap, model_items: IdMap, users: IdMap, items: IdMap):
        self.scorer = scorer
        self.user_map = model_users.indices(users.ids).astype(np.int64)  # split user -> model user (-1 unknown)
        self.item_map = model_items.indices(items.ids).astype(np.int64)  # split item -> model item (-1 unknown)
        self.known_items = np.flatnonzero(self.item_map >= 0)
        self.n_items = len(items)
        # split items x model items, one 1 per known item: history @ P moves rows into the model's item space
        self.to_model = sp.csr_matrix(
            (np.ones(self.known_items.size, np.float32), (self.known_items, self.item_map[self.known_items])),
            shape=(len(items), len(model_items)),
        )
        self.coverage = {
            "users_known": int((self.user_map >= 0).sum()),
            "users": len(users),
            "items_known": int(self.known_items.size),
            "items": len(items),
        }

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> Remapped:
        raise TypeError("a remapped production model is already fitted; it is only scored")

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        model_users = np.where(users >= 0, self.user_map[np.maximum(users, 0)], -1)
        model_scores = np.asarray(
            self.scorer.score(model_users, sp.csr_matrix(history) @ self.to_model), dtype=np.float32
        )
        out = np.full((users.size, self.n_items), -np.inf, dtype=np.float32)
        out[:, self.known_items] = model_scores[:, self.item_map[self.known_items]]
        return out

    def params(self) -> dict[str, Any]:
        return {"remapped": self.coverage}


def evaluate_models(
    models: dict[str, Recommender], split: Split, *, n_boot: int = 500, seed: int = 0
) -> dict[str, Any]:
    """name -> {metrics, ci, n_users, score_seconds} for every model on the split's validation stage."""
    fitted, target, users = split.stage_matrices("validation")
    out: dict[str, Any] = {}
    for name, model in models.items():
        started = time.perf_counter()
        result = evaluate(model, fitted, target, users, n_boot=n_boot, seed=seed)
        result["eval_seconds"] = round(time.perf_counter() - started, 3)
        out[name] = result
    return out
