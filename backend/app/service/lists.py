"""Precomputed best-first lists: each row's best items, ranked as a request ranks them.

Rows are a known user's best unseen items, an item's nearest items, or the popular and trending
orders. A request reads the first k entries that pass its filters, and scores the whole catalogue
only when fewer than k pass (or k is longer than the list): the answer is the same either way,
because every item missing from a list scores at most its last entry, and ties go to the lower item
index on both paths (``top_k_row``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.model.base import top_k_row

#: Entries per row.
LENGTH = 200
#: Scores computed per chunk while building (bytes).
CHUNK_BYTES = 2**25


@dataclass(frozen=True)
class BestLists:
    items: np.ndarray  # [row, position] item index (intp, so indexing with it needs no conversion), -1 padded
    scores: np.ndarray  # [row, position] float64 rounded as responses show them, -inf padded
    lengths: np.ndarray  # entries per row

    @staticmethod
    def nbytes(n_rows: int, n_items: int) -> int:
        return (np.dtype(np.intp).itemsize + 8) * min(LENGTH, n_items) * n_rows


def build(
    score_rows: Callable[[slice], np.ndarray], n_rows: int, n_items: int, exclude: sp.csr_matrix, decimals: int
) -> BestLists:
    """Each row's ``LENGTH`` best items by ``score_rows`` (its ``exclude`` row left out), best first, ranked
    on the float32 scores; the scores are kept rounded to ``decimals`` (what a response shows)."""
    n_list = min(LENGTH, n_items)
    items = np.full((n_rows, n_list), -1, np.intp)
    scores = np.full((n_rows, n_list), -np.inf, np.float64)
    lengths = np.zeros(n_rows, np.int64)
    step = max(1, CHUNK_BYTES // (4 * max(1, n_items)))
    for lo in range(0, n_rows, step):
        hi = min(lo + step, n_rows)
        block = np.array(score_rows(slice(lo, hi)), dtype=np.float32)
        for r in range(hi - lo):
            row = block[r]
            row[exclude.indices[exclude.indptr[lo + r] : exclude.indptr[lo + r + 1]]] = -np.inf
            i, t = top_k_row(row, n_list)
            items[lo + r, : i.size], lengths[lo + r] = i, i.size
            scores[lo + r, : i.size] = t.astype(np.float64).round(decimals)
    return BestLists(items, scores, lengths)


def history_reasons(
    lists: BestLists, history: sp.csr_matrix, history_factors: np.ndarray, item_factors: np.ndarray
) -> np.ndarray:
    """[user, position]: the history item that adds most to each entry's score (history embedding .
    item embedding), which is what a request computes for its reasons; -1 where there is none."""
    why = np.full(lists.items.shape, -1, np.int32)
    for u in range(lists.items.shape[0]):
        hist, n = history.indices[history.indptr[u] : history.indptr[u + 1]], lists.lengths[u]
        if hist.size and n:
            contrib = history_factors[hist] @ item_factors[lists.items[u, :n]].T  # h x n
            why[u, :n] = hist[contrib.argmax(axis=0)]
    return why


def first_k(
    lists: BestLists, row: int, k: int, mask: np.ndarray | None, eligible: int
) -> tuple[slice | np.ndarray, np.ndarray, np.ndarray] | None:
    """(positions, items, scores) of the row's first k entries inside ``mask``, or None when the list
    may not hold them: fewer than min(k, eligible) of its entries pass. ``eligible`` counts the items
    that pass the filters and are not excluded, where the list excludes exactly what the request does."""
    items, scores, n = lists.items[row], lists.scores[row], int(lists.lengths[row])
    want = min(k, eligible)
    if mask is None:
        if n < want:
            return None
        pos: slice | np.ndarray = slice(0, want)
    else:
        pos = np.flatnonzero(mask[items[:n]])[:want]
        if pos.size < want:
            return None
    return pos, items[pos], scores[pos]
