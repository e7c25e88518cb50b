"""What a request would otherwise compute, precomputed at load within a memory budget (``RECOMMENDER_PRECOMPUTE_MB``).

Best-first lists: every known user's best unseen items (unseen: no interaction of a seen type at all) by the served model (with the history item
behind each entry), every item's nearest items, and the popular and trending orders. A request reads
the first k entries that pass its filters and scores the whole catalogue only when fewer than k pass
(or k is longer than the list): the answer is the same either way, because every item missing from
a list scores at most its last entry, and ties go to the lower item index on both paths
(``top_k_row``). Then, while the budget lasts, every known user's scores and the item x item cosines.

On ML-100K with the default 5 x 64 dimensions the tables took ~85 of ~300 us of server CPU off a
``/recommendations`` request and more than half of a ``/similar`` request's; on a 27,000-item
catalogue, whose tables do not fit (2.9 GB each), the lists take the mat-vec off most requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.model.base import Recommender, csr_row, top_k, two_at_a_time
from app.service.core.reasons import genre_orders

#: Entries per list.
LENGTH = 200
#: Scores in responses (and impressions) are rounded to this many decimals; the lists keep them so rounded.
SCORE_DECIMALS = 6
#: Scores computed per chunk while building (bytes).
CHUNK_BYTES = 2**25
#: Rows per call of an engine's ``strongest_history_rows`` (its arrays grow with rows x history x ``LENGTH``).
WHY_ROWS = 256


@dataclass(frozen=True)
class BestLists:
    # Four bytes each, so the lists of a 138,000-user x 27,000-item model (264 MB) fit the default budget.
    items: np.ndarray  # [row, position] int32 item index, -1 padded
    scores: np.ndarray  # [row, position] float32 as the model scored them (responses round them), -inf padded
    lengths: np.ndarray  # entries per row

    @staticmethod
    def nbytes(n_rows: int, n_items: int) -> int:
        return 8 * min(LENGTH, n_items) * n_rows


def build(
    score_rows: Callable[[slice], np.ndarray],
    n_rows: int,
    n_items: int,
    exclude: sp.csr_matrix,
    length: int | None = None,
) -> BestLists:
    """Each row's ``length`` (default ``LENGTH``) best items by ``score_rows`` (its ``exclude`` row left out),
    best first, ranked on the float32 scores, which are kept as they are: a response rounds them as it
    rounds scores ranked per request."""
    n_list = min(LENGTH if length is None else length, n_items)
    # every row is written by its block's top_k, padding (-1, -inf) included
    items = np.empty((n_rows, n_list), np.int32)
    scores = np.empty((n_rows, n_list), np.float32)
    lengths = np.empty(n_rows, np.int64)
    step = max(1, CHUNK_BYTES // (4 * max(1, n_items)))

    def fill(lo: int) -> None:
        hi = min(lo + step, n_rows)
        # the batched top_k ranks as top_k_row does (ties to the lower item index, excluded items left
        # out), with a heap per row: a third of the time of one argpartition per row on 27,000 items
        idx, top = top_k(score_rows(slice(lo, hi)), n_list, exclude=exclude[lo:hi])
        items[lo:hi], scores[lo:hi] = idx, top
        lengths[lo:hi] = np.count_nonzero(idx >= 0, axis=1)

    list(two_at_a_time(fill, range(0, n_rows, step)))  # the 138,000-user lists in 11.5 s against 18.9 s
    return BestLists(items, scores, lengths)


def strongest_history(lists: BestLists, engine: Recommender, history: sp.csr_matrix) -> np.ndarray:
    """[user, position]: the history item the engine says adds most to each entry's score (what a
    request names in its reasons), -1 where there is none."""
    why = np.full(lists.items.shape, -1, np.int32)
    rows = getattr(engine, "strongest_history_rows", None)  # the same for many rows at once, where an engine has it
    if rows is not None:

        def fill(lo: int) -> None:
            why[lo : lo + WHY_ROWS] = rows(history[lo : lo + WHY_ROWS], lists.items[lo : lo + WHY_ROWS])

        list(two_at_a_time(fill, range(0, why.shape[0], WHY_ROWS)))
        return why
    for u in range(lists.items.shape[0]):
        n = int(lists.lengths[u])
        if n and history.indptr[u + 1] > history.indptr[u]:
            why[u, :n] = engine.explain(u, csr_row(history, u), lists.items[u, :n]).strongest_history()
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


#: Entries per hybrid list, as many as the embedding model's: a filtered request ranks per request only when fewer pass.
HYBRID_LENGTH = LENGTH
#: Entries of a hybrid list whose reasons are kept: a request reaching further down (narrow filters)
#: explains its items then (about 1.2 ms). 50 covers most filtered requests of k=10 on ML-100K.
HYBRID_EXPLAINED = 50


@dataclass(frozen=True)
class HybridLists:
    """Every known user's best unseen items by the hybrid engine, with what its reasons are made of:
    ``codes[user, position]`` the reason groups strongest first, ``liked[user, position]`` the history
    item behind "because you liked" (``HybridRecommender.reason_codes``), for the first
    ``HYBRID_EXPLAINED`` positions."""

    lists: BestLists
    codes: np.ndarray
    liked: np.ndarray
    genre_order: np.ndarray | None  # [user]: the user's genres, most frequent first (``reasons.genre_orders``)


def hybrid_lists(engine, history: sp.csr_matrix, seen: sp.csr_matrix, genres: sp.csr_matrix | None) -> HybridLists:
    """``HybridLists`` for every user of ``history`` (``engine``: a fitted ``HybridRecommender``;
    ``genres``: the catalogue's items x genres, None without)."""
    n_users, n_items = history.shape
    users = np.arange(n_users)
    lists = build(lambda rows: engine.score(users[rows], history[rows]), n_users, n_items, seen, HYBRID_LENGTH)
    codes, liked = engine.reason_codes(users, history, lists.items[:, :HYBRID_EXPLAINED].astype(np.int64))
    return HybridLists(lists, codes, liked, genre_orders(history, genres) if genres is not None else None)


@dataclass(frozen=True)
class Precomputed:
    """The tables of one loaded model (None: did not fit the budget)."""

    user_best: BestLists | None = None  # best unseen items of each known user
    user_why: np.ndarray | None = None  # [user, list position]: the history item behind the entry
    item_best: BestLists | None = None  # nearest items of each item
    popular_best: BestLists | None = None  # rows: popular, trending
    user_scores: np.ndarray | None = None  # [user, item]: the served model's scores
    item_cosines: np.ndarray | None = None  # [query item, item]: cosine of the item embeddings


def precompute(
    engine: Recommender,
    history: sp.csr_matrix,
    seen: sp.csr_matrix,
    item_unit: np.ndarray,
    popular: np.ndarray,
    trending: np.ndarray,
    budget_bytes: int,
) -> Precomputed:
    """Each table of ``Precomputed`` when it fits what is left of ``budget_bytes``, in that order.

    ``engine`` scores known users from their ``history`` rows, and their lists leave out what they have
    ``seen`` (every item they interacted with); ``item_unit`` are the unit item
    embeddings behind ``/similar``; ``popular`` and ``trending`` are the constant popular scores."""
    n_users, n_items = history.shape
    lists_bytes = BestLists.nbytes(n_users + n_items, n_items) + 4 * min(LENGTH, n_items) * n_users  # + reasons
    scores_bytes = 4 * n_users * n_items
    square_bytes = 4 * n_items * n_items
    user_best = user_why = item_best = popular_best = user_scores = item_cosines = None
    if lists_bytes <= budget_bytes:
        users = np.arange(n_users)
        user_best = build(lambda rows: engine.score(users[rows], history[rows]), n_users, n_items, seen)
        user_why = strongest_history(user_best, engine, history)
        item_best = build(
            lambda rows: item_unit[rows] @ item_unit.T, n_items, n_items, sp.identity(n_items, format="csr")
        )
        constant = np.stack([popular, trending])
        popular_best = build(lambda rows: constant[rows], 2, n_items, sp.csr_matrix((2, n_items)))
        budget_bytes -= lists_bytes
    if scores_bytes <= budget_bytes:
        user_scores = np.asarray(engine.score(np.arange(n_users), history), dtype=np.float32)
        budget_bytes -= scores_bytes
    if square_bytes <= budget_bytes:
        item_cosines = item_unit @ item_unit.T
    return Precomputed(user_best, user_why, item_best, popular_best, user_scores, item_cosines)
