"""The hybrid engine's learned ranker: LightGBM's ``lambdarank`` over candidate features, with early stopping.

Each user's candidates are one query group; a candidate's label is 1 when the user's later positives
hold it. Boosting starts from one feature, the base (the embedding model's score): the trees learn a
correction to it, so a ranker with no trees ranks exactly as the base does, and early stopping (NDCG@10
on the validation users, ``patience`` rounds) keeps only the trees that improve on it. Trees on their
own give coarse, tied scores after the few rounds a small log supports; added to the base they keep its
fine order. The booster is kept in LightGBM's own text format (saved with the model, read back exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

#: LightGBM settings; ``deterministic`` + one seed make a fit repeatable on the same data and threads. Small
#: trees, many rounds at a low rate: the few labels of a small log (one or two per user) support little
#: more (chosen on ML-100K's validation split, 2 seeds: +4 to +8% NDCG@10 over the embedding model).
RANKER_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.02,
    "num_leaves": 7,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}
#: Laid over ``RANKER_PARAMS`` when the training set has ``LARGE_ROWS`` candidates or more: many labels
#: steady the gradient, so a higher rate needs a third of the rounds, and 63 histogram bins make each
#: cheaper. A shop-shaped log's ranker: 3.0 s instead of 10.9 s, the hybrid's leave-last-out NDCG@10
#: 0.0453 against 0.0456 (3 seeds); on ML-100K's few labels the low rate stays (0.096 there against 0.094).
LARGE_PARAMS: dict[str, Any] = {"learning_rate": 0.05, "max_bin": 63}


@dataclass
class Ranker:
    """Trained boosters (LightGBM text; their mean is the correction), the feature names they were
    trained on, and the base feature their scores are added to."""

    model_texts: list[str]
    feature_names: list[str]
    best_iterations: list[int]
    base: str
    _boosters: list[Any] | None = None
    _tables: dict[tuple[tuple[int, ...], bytes], list[np.ndarray]] | None = None

    def _base(self, x: np.ndarray) -> np.ndarray:
        b = x[:, self.feature_names.index(self.base)].astype(np.float64)
        return np.nan_to_num(b, nan=0.0)

    @property
    def boosters(self) -> list[Any]:
        """The boosters that have trees (a member early-stopped at 0 rounds adds nothing)."""
        if self._boosters is None:
            import lightgbm as lgb

            self._boosters = [
                lgb.Booster(model_str=t) for t, n in zip(self.model_texts, self.best_iterations, strict=True) if n
            ]
        return self._boosters

    def predict(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Ranking scores, one per row of ``x`` (higher = better)."""
        if not len(x):
            return np.zeros(0, np.float32)
        raw = sum((b.predict(x, num_threads=threads) for b in self.boosters), np.zeros(len(x)))
        return np.asarray(raw / len(self.model_texts) + self._base(x), dtype=np.float32)

    def contributions(self, x: np.ndarray, threads: int = 1, groups: np.ndarray | None = None) -> np.ndarray:
        """Per row, each feature's additive part of its score (or, given ``groups``, a features x groups 0/1
        matrix, each group's): the boosters' mean of ``path_contributions`` (the change of a tree's value at
        each split, credited to the split's feature), the base feature also credited with the base score
        minus its mean over the rows (so an item the base ranks high has that as a reason): what reasons are
        made from. Per row they sum to its score minus a constant. Why not LightGBM's SHAP values
        (``pred_contrib``): those cost ~25x a prediction (``benchmarks/reasons.py``), and building a 1M-event log's 6,900 users' reasons
        spent 39 of its 61 s in them; a tree's leaf index costs what a prediction costs, the rest is a
        gather over tables of a few leaves per tree."""
        n = len(self.feature_names)
        groups = np.eye(n) if groups is None else np.asarray(groups, np.float64)
        out = np.zeros((len(x), groups.shape[1]), np.float64)
        if not len(x):
            return out.astype(np.float32)
        if self._tables is None:
            self._tables = {}
        key = (groups.shape, groups.tobytes())
        if key not in self._tables:  # per booster: (tree, leaf) rows x groups, once per grouping
            paths = (path_contributions(b.dump_model(), n) for b in self.boosters)
            self._tables[key] = [(t @ groups).reshape(t.shape[0] * t.shape[1], -1) for t in paths]
        for b, table in zip(self.boosters, self._tables[key], strict=True):
            leaves = np.asarray(b.predict(x, pred_leaf=True, num_threads=threads), np.int64).reshape(len(x), -1)
            index = leaves + np.arange(leaves.shape[1]) * (len(table) // leaves.shape[1])
            if index.size * groups.shape[1] <= 2**20:  # a request's few rows: one gather
                out += table[index].sum(axis=1)
            else:  # many: rows x (tree, leaf) one-hot times the table, without the rows x trees x groups copy
                hits = sp.csr_matrix(
                    (np.ones(index.size), index.ravel(), np.arange(0, index.size + 1, index.shape[1])),
                    shape=(len(x), len(table)),
                )
                out += hits @ table
        out /= len(self.model_texts)  # as ``predict``: the mean of all, a member without trees adds 0
        base = self._base(x)
        out += np.outer(base - base.mean(), groups[self.feature_names.index(self.base)])
        return out.astype(np.float32)


def path_contributions(dump: dict[str, Any], n_features: int) -> np.ndarray:
    """(trees, leaves, features) from a LightGBM model's ``dump_model()``: for each leaf, the change of
    the tree's value at each split on the way to it, summed per split feature (the path attribution
    known from ``treeinterpreter``). A leaf's row sums to its value minus the tree's root value."""
    trees = dump["tree_info"]
    table = np.zeros((len(trees), max((t["num_leaves"] for t in trees), default=1), n_features))
    for t, info in enumerate(trees):
        stack = [(info["tree_structure"], np.zeros(n_features))]
        while stack:
            node, acc = stack.pop()
            if "split_feature" not in node:  # a leaf (a tree of one leaf has no index: it is leaf 0)
                table[t, node.get("leaf_index", 0)] = acc
                continue
            for side in ("left_child", "right_child"):
                child = node[side]
                step = acc.copy()
                step[node["split_feature"]] += child.get("leaf_value", child.get("internal_value", 0.0))
                step[node["split_feature"]] -= node["internal_value"]
                stack.append((child, step))
    return table


#: Training rows (candidates x rankers) the default number of rankers spends at most: a small log's
#: few labels make one ranker's early-stopping round a matter of chance, so it gets ``MAX_MEMBERS``
#: averaged; a large log's labels are many, and five rankers there cost minutes for nothing steadier.
ROW_BUDGET = 500_000
MAX_MEMBERS = 5
#: Candidates from which a training set counts as large (``LARGE_PARAMS``): where it gets one ranker.
LARGE_ROWS = ROW_BUDGET // 2


#: Negatives a training query keeps at most (all its positives stay): see ``sample_negatives``.
NEGATIVES_PER_QUERY = 30


def sample_negatives(
    y: np.ndarray, groups: np.ndarray, limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, new group sizes): every positive row of each query group (consecutive rows, ``groups``
    their sizes) and at most ``limit`` of its negatives, drawn at random.

    Why: ``lambdarank`` only learns from pairs near the top (``lambdarank_truncation_level``), and with
    hundreds of candidates a query's positive mostly starts far below it, so most rows cost a histogram
    pass and teach nothing. On a shop-shaped log (245 candidates a query) the hybrid engine fitted in
    49 s against 134 s and scored 0.046 against 0.036 leave-last-out NDCG@10 (3 seeds; README)."""
    groups = np.asarray(groups, dtype=np.int64)
    gid = np.repeat(np.arange(groups.size), groups)
    positive = np.asarray(y) > 0
    key = rng.random(gid.size)
    key[positive] = -1.0  # positives sort first in their group, so they are always kept
    order = np.lexsort((key, gid))
    place = np.empty(gid.size, np.int64)
    place[order] = np.arange(gid.size) - np.repeat(np.cumsum(groups) - groups, groups)
    keep = place < np.bincount(gid, weights=positive, minlength=groups.size).astype(np.int64)[gid] + limit
    return keep, np.bincount(gid[keep], minlength=groups.size)


def members_for(rows: int) -> int:
    """How many rankers ``train_rankers`` averages by default for ``rows`` training candidates."""
    return int(min(MAX_MEMBERS, max(1, ROW_BUDGET // max(rows, 1))))


def train_rankers(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[int],
    feature_names: Sequence[str],
    base: str,
    *,
    members: int = MAX_MEMBERS,
    stop_share: float = 0.2,
    negatives: int | None = NEGATIVES_PER_QUERY,
    seed: int = 42,
) -> Ranker:
    """``members`` rankers (``train_ranker``), each early-stopped on its own random ``stop_share`` of the
    query groups and trained on the rest, averaged: one split of a small log's few labels decides a
    single ranker's stopping round by chance (on ML-100K's validation split single rankers ranged
    from -1.5% to +9% over the embedding model, their mean of five +1.6 to +9%)."""
    groups = np.asarray(groups, dtype=np.int64)
    params = {**RANKER_PARAMS, **(LARGE_PARAMS if len(x) >= LARGE_ROWS else {})}
    texts, iterations = [], []
    for m in range(members):
        rng = np.random.default_rng(seed + 1000 * m)
        stop = rng.random(groups.size) < stop_share
        if stop.all() or not stop.any():
            stop = np.arange(groups.size) % 5 == 0
        rows = np.repeat(stop, groups)  # each row takes its group's side
        fit, fit_groups = ~rows, groups[~stop]
        if negatives is not None:
            # the stopping groups stay whole: their NDCG@10 is measured over every candidate, as served
            kept, fit_groups = sample_negatives(y[fit], fit_groups, negatives, rng)
            fit = np.flatnonzero(fit)[kept]
        one = train_ranker(
            x[fit], y[fit], fit_groups, x[rows], y[rows], groups[stop], feature_names, base, params, seed=seed + m
        )
        texts += one.model_texts
        iterations += one.best_iterations
    return Ranker(texts, list(feature_names), iterations, base)


def train_ranker(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[int],
    x_val: np.ndarray,
    y_val: np.ndarray,
    groups_val: Sequence[int],
    feature_names: Sequence[str],
    base: str,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 42,
) -> Ranker:
    """Fit ``lambdarank`` on query groups (consecutive rows, ``groups`` their sizes), boosted from the
    ``base`` feature and early-stopped on the validation groups' NDCG@10. ``params``: LightGBM's
    (default ``RANKER_PARAMS``); at most 30 / rate rounds, stopped after 3 / rate without a gain
    (1,500 and 150 at 0.02)."""
    import lightgbm as lgb

    names = list(feature_names)
    col = names.index(base)

    def init(a: np.ndarray) -> np.ndarray:
        return np.nan_to_num(a[:, col].astype(np.float64), nan=0.0)

    train = lgb.Dataset(x, y, group=list(groups), feature_name=names, init_score=init(x), free_raw_data=True)
    valid = lgb.Dataset(
        x_val, y_val, group=list(groups_val), reference=train, init_score=init(x_val), free_raw_data=True
    )
    params = {**(params or RANKER_PARAMS), "seed": int(seed)}
    rate = float(params["learning_rate"])
    booster = lgb.train(
        params,
        train,
        num_boost_round=round(30 / rate),
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(round(3 / rate), verbose=False)],
    )
    best = int(booster.best_iteration or 0)
    return Ranker([booster.model_to_string(num_iteration=max(best, 1))], names, [best], base)
