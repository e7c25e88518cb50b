"""The models a retraining run compares, and their evaluation on one validation split: the candidate,
the production model as it is (``production_scorer``) and the baselines (``fit_baselines``).

The production model was fitted on other data, so its user and item indices differ from the split's.
``Remapped`` translates: a user's history row is moved into the production model's item space, the
model scores its own catalogue, and the scores come back in the split's item order; items the
production model does not know get ``-inf`` (it could never recommend them). Every model is then
scored by ``app.eval.evaluate.evaluate`` on the same users, fitted rows and held-out rows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.data.idmap import IdMap
from app.eval.data import EvalData, stage_features
from app.eval.evaluate import evaluate
from app.eval.splits import Split
from app.model.artifacts import ModelLoadError, load_bundle
from app.model.base import Explanation, Recommender
from app.model.engines import make_engine
from app.registry.state import production_model_dir


class Remapped:
    """A fitted scorer seen through another dataset's user and item indices (the ``Recommender.score`` contract)."""

    name: ClassVar[str] = "remapped"
    max_items: ClassVar[int | None] = None

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

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """The model's explanation of the items it knows, in the split's item indices."""
        model_user = int(self.user_map[user]) if user >= 0 else -1
        known = items[self.item_map[items] >= 0]
        model_history = sp.csr_matrix(sp.csr_matrix(history) @ self.to_model)
        model_history.sort_indices()
        why = self.scorer.explain(model_user, model_history, self.item_map[known])
        back = np.full(self.to_model.shape[1], -1, dtype=np.intp)
        back[self.item_map[self.known_items]] = self.known_items
        return Explanation(known, back[why.history], why.contributions, why.features)

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


def fit_baselines(names: Sequence[str], data: EvalData, split: Split) -> tuple[dict[str, Any], dict[str, float]]:
    """Fitted baselines (default hyperparameters) keyed by name, and their fit seconds."""
    features = stage_features(data, split, "validation")
    matrix = split.train.matrix()
    models, seconds = {}, {}
    for name in names:
        engine = make_engine(name)
        started = time.perf_counter()
        engine.fit(matrix, features)
        seconds[name] = round(time.perf_counter() - started, 3)
        models[name] = engine
    return models, seconds


def production_scorer(root: Path, split: Split) -> tuple[str | None, Any, str | None]:
    """(version, scorer in the split's index space, error) for the current production model."""
    prod_dir = production_model_dir(root)
    if prod_dir is None:
        return None, None, None
    try:
        bundle = load_bundle(prod_dir)
    except ModelLoadError as exc:
        return prod_dir.name, None, str(exc)
    return prod_dir.name, Remapped(bundle.scorer(), bundle.users, bundle.items, split.users, split.items), None
