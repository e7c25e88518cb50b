"""Top-k for one request: from a precomputed list when it holds the answer, else by ranking the scores,
with popular items filling what an engine leaves out; and the ranked items as response records.

The cut itself is ``app.model.base.top_k_row`` (the engines' one ranking rule: filters as a mask,
exclusions as indices, ties by item index), so a precomputed list and a per-request ranking agree.
A request that asks for ``diversity`` ranks a larger pool the same way and ``diversify`` picks its list
from it (``app.model.diversity.mmr``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from app.model.base import top_k_row
from app.model.diversity import mmr
from app.service.core.filters import eligible
from app.service.core.precompute import SCORE_DECIMALS, BestLists, first_k


@dataclass
class Result:
    """A ranked list and how it was made; the HTTP layer turns it into the response body."""

    engine: str
    requested_engine: str
    fallback_used: bool
    strategy: str  # personalised | seed_items | popular | seed_genres | similar_item | trending
    items: list[dict[str, Any]]
    total_candidates: int
    notes: list[str] = field(default_factory=list)
    unknown_seed_item_ids: list[str] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return [it["item_id"] for it in self.items]

    @property
    def scores(self) -> list[float]:
        return [it["score"] for it in self.items]


class Ranked(NamedTuple):
    """``idx``/``scores`` best first; the first ``n_own`` are the engine's own, the rest filled from popular
    items; ``positions`` in the precomputed list when it answered (else None); ``total`` eligible items."""

    positions: slice | np.ndarray | None
    idx: np.ndarray
    scores: np.ndarray
    n_own: int
    total: int


def rank(
    scores: np.ndarray,
    k: int,
    mask: np.ndarray | None,
    exclude: np.ndarray,
    fill: np.ndarray | None,
    n_items: int,
    total: int | None = None,
) -> Ranked:
    """Top k of ``scores`` over the eligible items. Items an engine scores -inf (outside its pool) are
    filled from the ``fill`` scores (popular, same filters) when given; ``total``: the eligible count
    when the caller has it already."""
    total = eligible(mask, exclude, n_items) if total is None else total
    idx, top = top_k_row(scores, k, mask, exclude)
    n_own = idx.size
    want = min(k, total)
    if fill is not None and n_own < want:
        pidx, ptop = top_k_row(fill, want - n_own, mask, np.concatenate([exclude, idx]))
        idx = np.concatenate([idx, pidx])
        top = np.concatenate([top, ptop])
    return Ranked(None, idx, top, n_own, total)


def top(
    best: tuple[BestLists, int] | None,
    scores: Callable[[], np.ndarray],
    k: int,
    mask: np.ndarray | None,
    exclude: np.ndarray,
    fill: np.ndarray | None,
    n_items: int,
    approx: Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> Ranked:
    """Top k from the precomputed list row ``best`` when it holds the answer (it must leave out exactly
    ``exclude``), else from ``approx(eligible count)`` when given and it answers (the ANN index's
    candidates, re-scored and filtered exactly: ``app.model.ann.top``), else by ranking ``scores()``
    (called only then) as ``rank`` does."""
    total = None
    if best is not None:
        total = eligible(mask, exclude, n_items)
        found = first_k(best[0], best[1], k, mask, total)
        if found is not None:
            pos, idx, top_scores = found
            return Ranked(pos, idx, top_scores, idx.size, total)
    if approx is not None:
        total = eligible(mask, exclude, n_items) if total is None else total
        got = approx(total)
        if got is not None:
            return Ranked(None, got[0], got[1], got[0].size, total)
    return rank(scores(), k, mask, exclude, fill, n_items, total)


#: A diversified list of k is picked from the best max(POOL_FACTOR * k, POOL_MIN) candidates.
POOL_FACTOR, POOL_MIN = 5, 50


def pool_size(k: int) -> int:
    """How many candidates a diversified list of ``k`` items is picked from."""
    return max(POOL_FACTOR * k, POOL_MIN)


def diversify(pool: Ranked, k: int, vectors: np.ndarray, diversity: float) -> Ranked:
    """The ``k`` of ``pool`` (ranked best first, as ``rank`` or ``top`` return it) that ``mmr`` picks with
    ``diversity`` over the items' ``vectors`` (rows by item index), their relevance the pool's scores. Only
    the engine's own items are re-ranked; items filled from popular ones follow them in their order."""
    n_own = pool.n_own
    own = mmr(np.arange(n_own), pool.scores[:n_own], vectors[pool.idx[:n_own]], k, diversity)
    fill = np.arange(n_own, min(pool.idx.size, n_own + k - own.size))
    pos = np.concatenate([own, fill])
    return Ranked(None, pool.idx[pos], pool.scores[pos], own.size, pool.total)


def records(
    base: list[tuple[str, str, list[str], int | None]], idx: np.ndarray, scores: np.ndarray, reasons: list[list[str]]
) -> list[dict[str, Any]]:
    """The response's items; ``scores`` (float32, ranked per request or precomputed) rounded to ``SCORE_DECIMALS``."""
    vals = scores.astype(np.float64).round(SCORE_DECIMALS).tolist()
    return [
        {"item_id": b[0], "title": b[1], "genres": b[2], "year": b[3], "score": s, "rank": r, "reasons": why}
        for r, (b, s, why) in enumerate(zip([base[i] for i in idx.tolist()], vals, reasons, strict=True), start=1)
    ]


def finish(result: Result, k: int) -> Result:
    """Say so when fewer than k items are left after filters and exclusions."""
    if len(result.items) < k:
        result.notes.append(
            f"only {result.total_candidates} item(s) are left after filters and exclusions; "
            f"returning {len(result.items)} of the {k} requested"
        )
    return result
