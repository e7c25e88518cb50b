"""The one recommender contract every engine follows, and the one place for ranking, seen-item and filter rules.

An engine is fitted on a users x items CSR matrix and scores users given their history rows, so a
user who is unknown to the fit (new events, seed items) can still be scored by engines that build
the user from their items. It explains its own scores (``explain``: which history items or named
features made them), and says how large a catalogue it can take (``max_items``). Ranking, exclusions
and candidate filters live in ``top_k`` (batches) and ``top_k_row`` (one user, the serving path) only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures

_NONE = np.zeros(0, dtype=np.intp)
_NONE.flags.writeable = False


@dataclass(frozen=True)
class Explanation:
    """What made an engine score ``items`` for one user, in the engine's own terms.

    ``contributions[h, j]`` is how much history item ``history[h]`` adds to the score of ``items[j]``
    (the engine's similarity or weight between them); ``features[name][j]`` is a named part of the
    score of ``items[j]`` (a heuristic's terms). Either may be empty: an engine that cannot split its
    score says nothing rather than something made up."""

    items: np.ndarray
    history: np.ndarray = field(default_factory=lambda: _NONE)
    contributions: np.ndarray | None = None
    features: Mapping[str, np.ndarray] = field(default_factory=dict)

    def strongest_history(self) -> np.ndarray:
        """Per item, the history item that adds most to its score (-1 for every item when there is none)."""
        if self.contributions is None or not self.history.size:
            return np.full(len(self.items), -1, dtype=np.intp)
        return self.history[np.asarray(self.contributions).argmax(axis=0)]


T = TypeVar("T")


def two_at_a_time(block: Callable[[int], T], starts: Sequence[int]) -> Iterator[T]:
    """``block(start)`` for each of ``starts``, in order, two at a time in threads when there are several:
    a block's NumPy, SciPy and faiss calls release the GIL, and with one BLAS thread (what training and
    the service run with) a block alone leaves the second core idle."""
    if len(starts) <= 1:
        yield from map(block, starts)
        return
    with ThreadPoolExecutor(2, thread_name_prefix="blocks") as pool:
        yield from pool.map(block, starts)


def history_items(history: sp.csr_matrix) -> np.ndarray:
    """The items of a one-row history (positive entries), as intp indices."""
    return history.indices[history.data > 0].astype(np.intp, copy=False)


def csr_row(matrix: sp.csr_matrix, u: int) -> sp.csr_matrix:
    """Row ``u`` of a CSR matrix as a 1 x n CSR sharing its arrays (scipy's row indexing costs ~10x more)."""
    lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
    return sp.csr_matrix(
        (matrix.data[lo:hi], matrix.indices[lo:hi], np.array([0, hi - lo])), shape=(1, matrix.shape[1])
    )


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), float32: cosine similarity is then a dot product."""
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros(m.shape, np.float32), where=norms > 0).astype(np.float32, copy=False)


@runtime_checkable
class Recommender(Protocol):
    name: ClassVar[str]
    #: Largest catalogue the engine can be fitted on (None: any); above it ``fit`` raises a ValueError saying why.
    max_items: ClassVar[int | None]
    #: What the engine does with a history row that changed since it was fitted (a like a second ago):
    #: scored exactly, re-solved, or only excluded. The service re-scores every user with online actions
    #: from their updated row, so this is what those actions can change.
    online_updates: ClassVar[str]

    def fit(self, matrix: sp.csr_matrix, features: ItemFeatures | None = None) -> Recommender:
        """Fit on users x items weights (the row index is the user index)."""
        ...

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores (len(users) x n_items, float32). ``users`` are fitted row indices, -1 for a user the fit
        did not see; ``history`` holds the same users' interaction rows (may include items added since)."""
        ...

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """Why ``items`` scored as they did for one user (``user`` and a one-row ``history`` as in ``score``)."""
        ...

    def params(self) -> dict[str, Any]:
        """Hyperparameters, for reports."""
        ...


#: ``top_k`` keeps the k best of a row in a heap (``faiss.kmax``: one pass, ~5x faster than NumPy's
#: ``argpartition`` for 50 of 5,500 items) when the row has at least this many items per one kept;
#: nearer a full sort, ``argpartition`` is faster (at 500 of 5,500 the heap costs twice as much).
HEAP_RATIO = 8


def best_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row the indices of the k highest scores, in no order: ties across the k-th place go to the
    lowest item indices, as in ``top_k_row``; -1 where a row has fewer than k scores above -inf."""
    n_items = scores.shape[1]
    if k * HEAP_RATIO > n_items:
        return np.argpartition(-scores, k - 1, axis=1)[:, :k]
    import faiss  # a heap per row in C++ (over rows on every core), the GIL released

    # one more than asked: where the (k+1)-th score equals the k-th, items tied at the k-th place may
    # be left out (the heap keeps any of them); elsewhere the k kept are the k best, with no pass over
    # the row to count ties
    kept, part = faiss.kmax(np.ascontiguousarray(scores), k + 1)
    kth = kept[:, k - 1]
    # those rows: the lowest indices win, as one row at a time would have it (a full row's -inf cannot
    # tie: -inf is never kept)
    for r in np.flatnonzero((part[:, k] >= 0) & (kept[:, k] == kth)):
        row, at = scores[r], kth[r]
        above = np.flatnonzero(row > at)
        part[r, :k] = np.concatenate([above, np.flatnonzero(row == at)[: k - above.size]])
    return part[:, :k]


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item indices and scores per row, best first (equal scores: lower item index first, also
    across the k-th place).

    ``exclude``: CSR rows (or a boolean matrix) of items never to return (seen items);
    ``candidates``: boolean mask over items (filters), applied before the cut so a filtered list is
    still k long when enough items match. Excluded positions come back as index -1, score -inf, at
    the end of a row when fewer than k items are eligible.
    """
    scores = np.array(scores, dtype=np.float32, copy=True, ndmin=2)
    n_rows, n_items = scores.shape
    if candidates is not None:
        scores[:, ~candidates] = -np.inf
    if exclude is not None:
        if sp.issparse(exclude):
            coo = sp.csr_matrix(exclude).tocoo()
            scores[coo.row, coo.col] = -np.inf
        else:
            scores[np.asarray(exclude, dtype=bool)] = -np.inf
    k = max(0, min(int(k), n_items))
    if k == 0:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32)
    part = best_k(scores, k) if k < n_items else np.tile(np.arange(n_items), (n_rows, 1))
    part_scores = np.where(part >= 0, np.take_along_axis(scores, np.maximum(part, 0), axis=1), -np.inf)
    order = np.lexsort((part, -part_scores), axis=1)  # best first; equal scores by item index
    idx = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32, copy=False)
    idx = np.where(np.isneginf(top), -1, idx)
    return idx.astype(np.int64), top


def top_k_row(
    scores: np.ndarray, k: int, candidates: np.ndarray | None = None, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` for one score vector (the serving hot path): the k best indices and scores, best first.

    ``candidates``: boolean mask of the items that may be returned (filters); ``exclude``: indices of
    items never to return (seen items, the query item). Items scored ``-inf`` (masked out) are dropped,
    so fewer than k come back when fewer are eligible. Equal scores are ranked by item index, also
    across the k-th place (deterministic, whatever the path). Half the cost of the batched version on
    a catalogue of 1,700 items (no 2-D index bookkeeping); ``exclude`` as indices rather than a mask
    because a user's seen items are a slice of the history CSR, used as it is."""
    if candidates is not None or (exclude is not None and exclude.size):
        scores = scores.astype(np.float32)  # a copy: the caller's scores (often a shared table row) stay as they are
        if candidates is not None:
            scores[~candidates] = -np.inf
        if exclude is not None:
            scores[exclude] = -np.inf
    n = scores.shape[0]
    k = max(0, min(int(k), n))
    if k == 0:
        return np.empty(0, np.int64), np.empty(0, scores.dtype)
    neg = -scores  # ndarray methods below: the np.* wrappers cost as much as the work at this size
    if k < n:
        part = neg.argpartition(k - 1)[:k]
        kth = neg[part].max()
        if kth < np.inf:  # every item tied with the k-th joins, so the lowest item indices win the tie
            part = np.concatenate([part[neg[part] < kth], np.flatnonzero(neg == kth)])
    else:
        part = np.arange(n)
    idx = part[np.lexsort((part, neg[part]))][:k]  # best first; equal scores by item index
    top = scores[idx]
    if top[-1] == -np.inf:
        keep = top > -np.inf
        idx, top = idx[keep], top[keep]
    return idx.astype(np.int64, copy=False), top
