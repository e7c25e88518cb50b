"""The models a retraining run compares, and their evaluation on one validation split: the candidate,
the production model (``production_scorer``, checked by ``training_overlap``, or refitted by
``refit_production``) and the baselines (``fit_baselines``).

The production model was fitted on other data, so its user and item indices differ from the split's.
``Remapped`` translates: a user's history row is moved into the production model's item space, the
model scores its own catalogue, and the scores come back in the split's item order; items the
production model does not know get ``-inf`` (it could never recommend them). Every model is then
scored by ``app.eval.evaluate.evaluate`` on the same users, fitted rows, held-out rows and exclusions
(every item the user had seen before the target, ``app.eval.evaluate.seen_exclusion``).

A fair comparison needs validation rows that neither model was trained on. The candidate is fitted on
the split's train part, so it never saw them; the production model's fitted pairs are read from its
directory (``fitted_pairs``): a model trained on all positives (the training CLI) was fitted on its
whole history, a model from a retraining run on its history minus the rows its split held out
(``heldout.npz``, written by the pipeline). ``training_overlap`` counts the validation rows whose
(user, item) pair production was fitted on, and which users they belong to.
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
from app.model.artifacts import MODEL_TYPE, ModelBundle, ModelLoadError, load_bundle
from app.model.base import Explanation, Recommender
from app.model.embedding import DEFAULT_PARAMS
from app.model.engines import make_engine
from app.registry.state import HELDOUT_FILE, production_model_dir
from app.registry.train import train_model


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
    models: dict[str, Recommender],
    split: Split,
    *,
    n_boot: int = 500,
    seed: int = 0,
    exclude: sp.csr_matrix | None = None,
    users: np.ndarray | None = None,
) -> dict[str, Any]:
    """name -> {metrics, ci, n_users, score_seconds} for every model on the split's validation stage.

    ``exclude``: items never ranked per user (default: the fitted rows); ``users``: evaluate only these
    of the stage's evaluated users (default: all of them)."""
    fitted, target, stage_users = split.stage_matrices("validation")
    if users is not None:
        stage_users = np.intersect1d(stage_users, np.asarray(users, dtype=np.int64))
    out: dict[str, Any] = {}
    for name, model in models.items():
        started = time.perf_counter()
        result = evaluate(model, fitted, target, stage_users, n_boot=n_boot, seed=seed, exclude=exclude)
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


def fitted_pairs(bundle: ModelBundle, model_dir: Path) -> tuple[sp.csr_matrix, str]:
    """(users x items of the pairs the model was fitted on, in its own indices; how that is known)."""
    history = sp.csr_matrix(bundle.history, dtype=np.float32, copy=True)
    history.data[:] = 1.0
    fit = (bundle.metadata.get("data_summary") or {}).get("fit") or {}
    if fit.get("part") == "train":
        path = Path(model_dir) / HELDOUT_FILE
        if path.is_file():
            with np.load(path) as z:
                held = sp.csr_matrix(
                    (np.ones(z["user_idx"].size, np.float32), (z["user_idx"], z["item_idx"])), shape=history.shape
                )
            fitted = history - history.multiply(held.astype(bool))
            fitted.eliminate_zeros()
            return sp.csr_matrix(fitted), f"its history minus the {held.nnz} rows its split held out"
        return history, "its whole history (the rows its split held out are not recorded)"
    if fit.get("part") == "all":
        return history, "its whole history (trained on all positives)"
    return history, "its whole history (no record of what it was fitted on: assumed all of it)"


def training_overlap(bundle: ModelBundle, model_dir: Path, split: Split) -> dict[str, Any]:
    """How many of the split's validation rows the model was fitted on, and whose: the fairness check.

    Returns ``{"rows", "validation_rows", "users" (split user indices, sorted), "fitted", "basis"}``;
    a row counts when the model knows the user and the item and its fitted pairs hold that pair."""
    fitted, basis = fitted_pairs(bundle, model_dir)
    validation = split.validation
    mu = bundle.users.indices(split.users.ids).astype(np.int64)[validation.user_idx]
    mi = bundle.items.indices(split.items.ids).astype(np.int64)[validation.item_idx]
    known = (mu >= 0) & (mi >= 0)
    hit = np.zeros(len(validation), dtype=bool)
    if known.any():
        hit[known] = np.asarray(fitted[mu[known], mi[known]]).ravel() != 0
    return {
        "rows": int(hit.sum()),
        "validation_rows": len(validation),
        "users": np.unique(validation.user_idx[hit]).astype(np.int64),
        "fitted": int(fitted.nnz),
        "basis": basis,
    }


def refit_config(metadata: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(hyperparameters to refit the production model's configuration with, or None; why not)."""
    if metadata.get("model_type") != MODEL_TYPE:
        return None, f"its model type {metadata.get('model_type')!r} is not {MODEL_TYPE!r}"
    hp = metadata.get("hyperparameters") or {}
    missing = sorted(k for k in DEFAULT_PARAMS if k not in hp)
    if missing:
        return None, f"its metadata lacks the hyperparameters {', '.join(missing)}"
    return {k: hp[k] for k in DEFAULT_PARAMS}, None


def refit_production(params: dict[str, Any], split: Split) -> tuple[Any, float]:
    """The production configuration fitted on the candidate's train part, as the candidate is: (model, seconds)."""
    model, info = train_model(split.train, {}, params, evaluation="none", log=None)
    return model, float(info["train_seconds"])
