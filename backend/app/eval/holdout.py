"""The training-time check: each user's latest positive held out, and HitRate/NDCG/Recall@10 on it.

``python -m app.registry.train`` reports these figures while it fits and beside the most-popular
baseline; they live here, with the other evaluation rules, so the model package never imports the
evaluation package. The slice is the one ``python -m app.eval --protocol leave-last-out`` tests on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from app.data.types import Dataset
from app.eval.metrics import per_user_metrics
from app.eval.splits import leave_last_out
from app.model.base import top_k

HOLDOUT_MIN_POSITIVES = 3  # a user keeps at least 2 positives for training when one is held out
REPORT_KS = (10,)


def holdout_split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, held-out): the latest positive of a ``fraction`` of the users with >= 3 positives.

    Ties in time are broken by the evaluation package's seeded hash (``leave_last_out``), so the
    slice is the same one ``python -m app.eval --protocol leave-last-out`` tests on.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("holdout_fraction must be between 0 and 1")
    empty = np.zeros(len(dataset), dtype=bool)
    if fraction == 0.0 or len(dataset) == 0:
        return dataset, dataset.subset(empty)
    latest = leave_last_out(dataset).test  # one row per user: the latest positive
    counts = np.bincount(dataset.user_idx, minlength=dataset.n_users)
    eligible = np.flatnonzero(counts >= HOLDOUT_MIN_POSITIVES)
    if fraction < 1.0:
        rng = np.random.default_rng(seed)
        eligible = np.sort(rng.choice(eligible, size=round(fraction * eligible.size), replace=False))
    chosen = np.zeros(dataset.n_users, dtype=bool)
    chosen[eligible] = True
    keys = latest.user_idx.astype(np.int64) * dataset.n_items + latest.item_idx
    keys = keys[chosen[latest.user_idx]]
    held = np.isin(dataset.user_idx.astype(np.int64) * dataset.n_items + dataset.item_idx, keys)
    return dataset.subset(~held), dataset.subset(held)


def heldout_metrics(
    score: Callable[[np.ndarray, sp.csr_matrix], np.ndarray],
    train: sp.csr_matrix,
    heldout: sp.csr_matrix,
    batch: int = 1024,
) -> dict[str, float]:
    """Mean HitRate/NDCG/Recall@10 over users with a held-out positive, full ranking, training items excluded."""
    users = np.flatnonzero(np.diff(heldout.indptr) > 0)
    sums: dict[str, float] = {}
    for start in range(0, users.size, batch):
        u = users[start : start + batch]
        hist = train[u]
        ranked, _ = top_k(score(u, hist), max(REPORT_KS), exclude=hist)
        for name, values in per_user_metrics(ranked, heldout[u], REPORT_KS).items():
            sums[name] = sums.get(name, 0.0) + float(values.sum())
    n = max(1, users.size)
    return {name: total / n for name, total in sums.items() if not name.startswith(("precision", "mrr"))}
