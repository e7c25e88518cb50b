"""Ranking metrics as pure NumPy functions, vectorised over users.

Every function takes ``ranked``: an int matrix (n_users x L) of item indices, best first, with -1
for "no item" padding (what ``app.model.base.top_k`` returns), and ``truth``: a CSR matrix
(n_users x n_items) whose non-zero entries are the relevant items of the same users (row i of
``truth`` belongs to row i of ``ranked``). Relevance is binary. Per-user functions return a float64
array of length n_users so that means and bootstrap intervals can be taken over users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)


def _check(ranked: np.ndarray, truth: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be a 2-D matrix (users x positions), got shape {ranked.shape}")
    truth = sp.csr_matrix(truth)
    if truth.shape[0] != ranked.shape[0]:
        raise ValueError(f"ranked has {ranked.shape[0]} rows but truth has {truth.shape[0]}")
    return ranked, truth


def hits(ranked: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean matrix like ``ranked``: True where the ranked item is relevant for that user.

    Vectorised with one sorted search over (row, item) keys; padding (-1) is never a hit.
    """
    ranked, truth = _check(ranked, truth)
    n_items = truth.shape[1]
    truth = truth.copy()
    truth.eliminate_zeros()
    truth.sort_indices()
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = rows * n_items + truth.indices.astype(np.int64)  # sorted: rows ascending, indices sorted
    valid = (ranked >= 0) & (ranked < n_items)
    query = np.arange(ranked.shape[0], dtype=np.int64)[:, None] * n_items + np.where(valid, ranked, 0)
    if keys.size == 0:
        return np.zeros(ranked.shape, dtype=bool)
    pos = np.searchsorted(keys, query)
    found = keys[np.minimum(pos, keys.size - 1)] == query
    return found & valid


def n_relevant(truth: sp.csr_matrix) -> np.ndarray:
    """Number of relevant (non-zero) items per user."""
    truth = sp.csr_matrix(truth)
    return np.asarray((truth != 0).sum(axis=1), dtype=np.float64).ravel()


def _hits_at(ranked: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    return hits(np.asarray(ranked)[:, :k], truth)


def precision_at_k(ranked: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """Relevant items in the top k divided by k (k, not the list length: short lists are penalised)."""
    return _hits_at(ranked, truth, k).sum(axis=1) / float(k)


def recall_at_k(ranked: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """Relevant items in the top k divided by the user's number of relevant items (0 when they have none)."""
    h = _hits_at(ranked, truth, k).sum(axis=1).astype(np.float64)
    n = n_relevant(truth)
    return np.divide(h, n, out=np.zeros_like(h), where=n > 0)


def hitrate_at_k(ranked: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top k."""
    return _hits_at(ranked, truth, k).any(axis=1).astype(np.float64)


def ndcg_at_k(ranked: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """Binary-relevance NDCG: sum of 1/log2(rank+1) over hits, over the ideal DCG of min(|truth|, k) hits."""
    h = _hits_at(ranked, truth, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))  # rank 1 -> 1/log2(2)
    dcg = (h * discounts[: h.shape[1]]).sum(axis=1)
    ideal_n = np.minimum(n_relevant(truth), k).astype(np.int64)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_n]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def reciprocal_rank(ranked: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """1 / rank of the first relevant item (0 when none is ranked). Pass the full ranking for MRR."""
    h = hits(ranked, truth)
    any_hit = h.any(axis=1)
    first = np.argmax(h, axis=1) + 1.0
    return np.where(any_hit, 1.0 / first, 0.0)


def coverage(ranked: np.ndarray, n_items: int, k: int = 100) -> float:
    """Share of the catalogue that appears in at least one user's top-k list."""
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    top = np.asarray(ranked)[:, :k]
    top = top[(top >= 0) & (top < n_items)]
    return float(np.unique(top).size) / float(n_items)


def items_in_top(ranked: np.ndarray, n_items: int, k: int = 100) -> np.ndarray:
    """Boolean mask of items appearing in some top-k list: lets coverage be accumulated over batches."""
    top = np.asarray(ranked)[:, :k]
    mask = np.zeros(n_items, dtype=bool)
    mask[top[(top >= 0) & (top < n_items)]] = True
    return mask


def per_user_metrics(
    ranked: np.ndarray, truth: sp.csr_matrix, ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Every per-user metric at every k (names like ``ndcg@10``), plus ``mrr`` over the whole of ``ranked``."""
    ranked, truth = _check(ranked, truth)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"precision@{k}"] = precision_at_k(ranked, truth, k)
        out[f"recall@{k}"] = recall_at_k(ranked, truth, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, truth, k)
        out[f"hitrate@{k}"] = hitrate_at_k(ranked, truth, k)
    out["mrr"] = reciprocal_rank(ranked, truth)
    return out


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0, chunk: int = 200
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, resampling users with replacement (seeded, so reports repeat)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("values must be 1-D (one value per user)")
    if values.size == 0:
        return (float("nan"), float("nan"))
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    n = values.size
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))
