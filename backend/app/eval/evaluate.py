"""Score a fitted recommender against held-out positives with full ranking (no sampled negatives).

Exclusion: by default a user's fitted rows are never ranked. ``seen_exclusion`` builds the stricter
rule that serving applies ("seen means seen"): every item the user had any event with (of the seen
event types: by default every type, so low ratings, views, skips and dislikes count) at or before
their first target row's time, except the target items themselves; rows at the same second as the
target count as before it (a batch of ratings entered in one second is one moment). Later events are
never used, so no future information shapes the ranking.

Every model's lists are also measured for intra-list diversity (``ild@10``: the mean over pairs of a
top-10 list's items of 1 - their cosine) in item vectors that do not depend on the engine
(``diversity_vectors``: genres when the items have them, else who interacted with each item), over at
most ``ILD_USERS`` users (a seeded sample beyond that, the same for every model of a split: on
interaction columns a list costs the number of users of its items).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures, seen_matrix
from app.data.types import EventLog
from app.eval import metrics as M
from app.eval.splits import Split, Stage
from app.model.base import Recommender, top_k
from app.model.diversity import Vectors, intra_list_diversity

COVERAGE_K = 100
#: Length of the lists whose intra-list diversity is reported (``ild@10``), and the users it is the mean over
#: at most (a seeded sample of the evaluated users when there are more).
ILD_K, ILD_USERS = 10, 10_000
CI_METRICS = ("ndcg@10",)


def _batch_size(n_items: int, budget: int = 4_000_000) -> int:
    """Users per batch so that a batch of dense scores stays around ``budget`` floats."""
    return max(1, min(1024, budget // max(1, n_items)))


def diversity_vectors(train_matrix: sp.spmatrix, features: ItemFeatures | None = None) -> Vectors:
    """Item vectors for ``ild@10`` that do not depend on the engine: the items' genre vectors when
    ``features`` has genres, else each item's column of the fitted matrix, binary (items x users, CSR: two
    items' cosine is their co-occurrence, users in common over the root of the product of their users)."""
    if features is not None and features.genres is not None and features.genres.shape[1] > 0:
        return sp.csr_matrix(features.genres, dtype=np.float32)
    columns = sp.csr_matrix(sp.csr_matrix(train_matrix).T, dtype=np.float32)
    columns.eliminate_zeros()
    columns.data[:] = 1.0
    return columns


def evaluate(
    recommender: Recommender,
    train_matrix: sp.csr_matrix,
    test_matrix: sp.csr_matrix,
    users: np.ndarray,
    ks: tuple[int, ...] = M.DEFAULT_KS,
    *,
    batch_size: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[int], Any] | None = None,
    exclude: sp.csr_matrix | None = None,
    item_vectors: Vectors | None = None,
) -> dict[str, Any]:
    """Mean metrics over ``users`` (row indices shared by both matrices).

    Each user is scored from their ``train_matrix`` row, their fitted items are excluded (via
    ``top_k``), the whole remaining catalogue is ranked (MRR uses the full ranking) and compared
    with their ``test_matrix`` row. Returns ``{"n_users", "metrics", "ci", "score_seconds"}``
    where ``ci`` holds the 95% bootstrap interval of the mean for ``ndcg@10`` (and any ``@k`` for
    the largest k when 10 is not among ``ks``; none when ``n_boot`` is 0). ``progress(n)`` is called after each batch.
    ``exclude`` (same shape): the items never ranked per user instead of the fitted ones (``seen_exclusion``).
    ``item_vectors`` (one row per item): what ``ild@10`` measures similarity in, default
    ``diversity_vectors(train_matrix)`` (the fitted matrix's item columns); its mean is over ``ILD_USERS``
    of the users at most (sampled with ``seed``) and leaves out lists of fewer than two items.
    """
    train_matrix = sp.csr_matrix(train_matrix)
    test_matrix = sp.csr_matrix(test_matrix)
    if train_matrix.shape != test_matrix.shape:
        raise ValueError(f"train {train_matrix.shape} and test {test_matrix.shape} matrices differ in shape")
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != train_matrix.shape:
            raise ValueError(f"exclude {exclude.shape} and train {train_matrix.shape} matrices differ in shape")
    users = np.asarray(users, dtype=np.int64)
    n_items = train_matrix.shape[1]
    vectors = diversity_vectors(train_matrix) if item_vectors is None else item_vectors
    if vectors.shape[0] != n_items:
        raise ValueError(f"item_vectors has {vectors.shape[0]} rows, expected one per item ({n_items})")
    ks = tuple(sorted({int(k) for k in ks}))
    bs = batch_size or _batch_size(n_items)
    per_user: dict[str, list[np.ndarray]] = {}
    covered = np.zeros(n_items, dtype=bool)
    diverse: list[np.ndarray] = []
    measured = np.ones(users.size, dtype=bool)  # the users whose lists' diversity is measured
    if users.size > ILD_USERS:
        measured[:] = False
        measured[np.random.default_rng(seed).choice(users.size, ILD_USERS, replace=False)] = True
    seconds = 0.0
    for start in range(0, users.size, bs):
        batch = users[start : start + bs]
        history = train_matrix[batch]
        t0 = time.perf_counter()
        scores = recommender.score(batch, history)
        seconds += time.perf_counter() - t0
        if scores.shape != (batch.size, n_items):
            raise ValueError(
                f"{recommender.name}.score returned shape {scores.shape}, expected {(batch.size, n_items)}"
            )
        ranked, _ = top_k(scores, n_items, exclude=history if exclude is None else exclude[batch])
        for name, values in M.per_user_metrics(ranked, test_matrix[batch], ks).items():
            per_user.setdefault(name, []).append(values)
        covered |= M.items_in_top(ranked, n_items, COVERAGE_K)
        sample = measured[start : start + bs]
        if sample.any():
            diverse.append(intra_list_diversity(ranked[sample, :ILD_K], vectors))
        if progress is not None:
            progress(batch.size)
    values = {name: np.concatenate(parts) for name, parts in per_user.items()}
    means = {name: float(v.mean()) if v.size else float("nan") for name, v in values.items()}
    means[f"coverage@{COVERAGE_K}"] = float(covered.sum()) / float(n_items) if n_items else float("nan")
    ild = np.concatenate(diverse) if diverse else np.empty(0)
    ild = ild[~np.isnan(ild)]
    means[f"ild@{ILD_K}"] = float(ild.mean()) if ild.size else float("nan")
    ci_names = [m for m in CI_METRICS if m in values] or [f"ndcg@{ks[-1]}"]
    ci = {name: list(M.bootstrap_ci(values[name], n_boot=n_boot, seed=seed)) for name in ci_names} if n_boot > 0 else {}
    return {"n_users": int(users.size), "metrics": means, "ci": ci, "score_seconds": seconds}


def seen_exclusion(
    events: EventLog, split: Split, stage: Stage = "validation", seen_events: Collection[str] | None = None
) -> sp.csr_matrix:
    """Users x items of the split (binary): what each user had seen before their target at ``stage``.

    The fitted rows, plus every item with an event of a type in ``seen_events`` (None: every type) at
    or before the user's earliest target timestamp, minus the target items themselves. Users without a
    target row get every seen item (they are not evaluated)."""
    fitted, target = split.stage(stage)
    n_users, n_items = fitted.n_users, fitted.n_items
    cutoff = np.full(n_users, np.iinfo(np.int64).max, dtype=np.int64)
    if len(target):
        np.minimum.at(cutoff, target.user_idx, target.ts.astype(np.int64))
    u = split.users.indices(events.user_id.astype(str).tolist()).astype(np.int64)
    keep = u >= 0
    keep[keep] = events.ts[keep] <= cutoff[u[keep]]
    before = EventLog(
        *(getattr(events, c)[keep] for c in ("user_id", "item_id", "event", "ts", "rating", "weight", "platform"))
    )
    seen = seen_matrix(before, fitted, seen_events)
    fm = fitted.matrix().copy()
    fm.data[:] = 1.0
    out = sp.csr_matrix(((seen + fm) > 0).astype(np.float32))
    if len(target):
        tm = sp.csr_matrix(
            (np.ones(len(target), np.float32), (target.user_idx, target.item_idx)), shape=(n_users, n_items)
        )
        out = sp.csr_matrix(out - out.multiply(tm > 0))
    out.eliminate_zeros()
    out.sort_indices()
    return out
