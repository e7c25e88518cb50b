"""What each kind of request returns: a user's list, items similar to an item, popular items, cold-start seeds.

The policy lives here: which engine serves a request (``auto``), when a list falls back to popular
items and says so, which notes explain the list, and how seed items and seed genres stand in for a
history. The work is ranking (``ranking``) over the runtime's scores, masks and precomputed lists;
reasons come from the engines' explanations (``reasons``). A request with ``diversity`` above 0 ranks a
pool of candidates instead (never from a precomputed list) and picks its list from it by maximal
marginal relevance over the served model's item embeddings (``ranking.diversify``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from app.model.engines import ENGINES
from app.service.core.filters import NO_FILTERS, NO_INDEX, Filters, eligible, exclusion
from app.service.core.fitted import EngineUnavailable
from app.service.core.online import OnlineView, add_rows, neighbour_push, penalise
from app.service.core.precompute import BestLists, build
from app.service.core.ranking import Ranked, Result, diversify, finish, pool_size, rank, records, top
from app.service.core.runtime import Runtime

#: Engines a client may ask for: ``auto`` picks one per user (see ``recommend``).
ENGINE_NAMES: tuple[str, ...] = ("auto", *sorted(ENGINES))


@dataclass(slots=True)
class _Ask:
    """What every list made for one request shares: its size, filter mask and exclusions, the engine the
    client asked for, the notes and unknown seeds gathered so far, and the diversity asked for (0: none)."""

    k: int
    mask: np.ndarray | None
    exclude: np.ndarray
    requested: str
    notes: list[str] = field(default_factory=list)
    unknown_seeds: list[str] = field(default_factory=list)
    diversity: float = 0.0

    @property
    def size(self) -> int:
        """How many candidates to rank: the list, or the pool a diversified list is picked from."""
        return pool_size(self.k) if self.diversity > 0 else self.k


def _diversified(rt: Runtime, pool: Ranked, k: int, diversity: float, notes: list[str]) -> Ranked:
    """The list of ``k`` picked from ``pool`` for ``diversity`` (above 0), and a note saying so."""
    ranked = diversify(pool, k, rt.served.item_unit, diversity)
    notes.append(
        f"diversity {diversity:g}: picked from the best {pool.idx.size} candidates, "
        "items much like those above them moved down"
    )
    return ranked


class UnknownItem(KeyError):
    """An item the model has no embedding for (a 404 with an explanation)."""

    def __init__(self, item_id: str, message: str):
        super().__init__(message)
        self.item_id = item_id
        self.message = message


def recommend(
    rt: Runtime,
    user_id: str | None,
    k: int,
    engine: str = "auto",
    *,
    exclude_seen: bool = True,
    filters: Filters = NO_FILTERS,
    seed_item_ids: Sequence[str] = (),
    seed_genres: Sequence[str] = (),
    user_is_new: bool = False,
    online: OnlineView | None = None,
    diversity: float = 0.0,
) -> Result:
    """Top-k for a user (known or not) with the requested engine.

    Known user with history: the engine asked for; ``auto`` is ``nn`` from ``min_history_for_nn``
    positives, the baseline below that (``fallback_used``). ``online``: what the user did since the
    model's training data ended: its positives join the history the engine scores, its seen items are
    excluded, its negatives push their neighbours down; a user the model does not know gets a personal
    list from it alone. Unknown user (or no history): with known ``seed_item_ids``, the engine scores
    the seeds as a history; otherwise popular items, ``seed_genres`` first (``fallback_used`` unless
    ``popular`` was asked for). ``user_is_new``: the store has events for this user logged since
    training that the model cannot use yet (items it does not know), and the list says so. ``diversity``
    (0..1; 0: the lists as ranked): every list is picked from a larger pool by maximal marginal relevance.
    """
    if engine not in ENGINE_NAMES:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_NAMES)}")
    mask = rt.masks.mask(filters)
    u = rt.user_index(user_id) if user_id is not None else None
    notes: list[str] = []
    unknown_seeds: list[str] = []
    seed_idx = NO_INDEX
    if seed_item_ids:
        found = rt.items.indices(seed_item_ids)
        unknown_seeds = [s for s, i in zip(seed_item_ids, found.tolist(), strict=True) if i < 0]
        seed_idx = np.unique(found[found >= 0])
        if unknown_seeds:
            notes.append(
                f"{len(unknown_seeds)} seed item(s) are unknown to the model and were ignored: "
                + ", ".join(unknown_seeds[:10])
            )
    cat = rt.catalogue
    seed_cols = cat.genre_columns(seed_genres, "seed_genres") if seed_genres else NO_INDEX
    hist = rt.seen(u) if u is not None else NO_INDEX
    parts = _online_parts(rt, u, online) if online is not None else None
    seen = hist if parts is None else parts.exclude
    ask = _Ask(
        k,
        mask,
        exclusion(seen if exclude_seen else None, seed_idx if seed_idx.size else None),
        engine,
        notes,
        unknown_seeds,
        diversity,
    )
    n_online = 0 if online is None else int(online.positives.size)
    if u is None and user_id is not None and not n_online:
        if user_is_new:
            notes.append(
                f"user {user_id!r} has events logged since the model was trained; "
                "personalised recommendations start after the next training run"
            )
        else:
            notes.append(f"user {user_id!r} is unknown to the model")

    wanted = rt.auto_engine if engine == "auto" else engine
    genre_cols = cat.genre_columns(filters.genres) if filters.genres else NO_INDEX
    if wanted == "popular":
        return _popular(rt, ask, False, genre_cols=genre_cols, seed_cols=seed_cols)
    n_history = rt.history_counts[u] if u is not None else 0
    if u is None and n_online and seed_idx.size:
        # A visitor the model does not know, with likes since: the picked seeds and those likes together.
        row = add_rows(parts.row, rt.row(seed_idx))
        return _personal(rt, ask, wanted, -1, row, False, False, online=parts, strategy="seed_items")
    if (u is not None and n_history > 0) or n_online:
        if seed_item_ids or seed_genres:
            notes.append("seed_item_ids and seed_genres are for users without history; this user's history is used")
        n_pos = n_history + n_online
        if engine == "auto" and n_pos < rt.settings.min_history_for_nn:
            wanted = "baseline"
            notes.append(
                f"the user has {n_pos} positive(s), fewer than {rt.settings.min_history_for_nn} "
                "needed for the personalised model; using the baseline"
            )
        fallback = wanted != (rt.auto_engine if engine == "auto" else engine)
        seen_excluded = exclude_seen and not seed_idx.size
        strategy = "personalised" if u is not None else "online_history"
        row = parts.row if parts is not None else None
        return _personal(
            rt, ask, wanted, -1 if u is None else u, row, fallback, seen_excluded, online=parts, strategy=strategy
        )
    if seed_idx.size:
        # Engines score a user from a history row (the served model pools its items' embeddings): the seeds stand in for one.
        return _personal(rt, ask, wanted, -1, rt.row(seed_idx), False, False, liked=False, strategy="seed_items")
    if u is not None and engine != "auto":
        notes.append("the user has no history in the model")
    if seed_item_ids and not seed_idx.size:
        notes.append("no seed item is known to the model")
    return _popular(rt, ask, True, genre_cols=genre_cols, seed_cols=seed_cols)


@dataclass(frozen=True, slots=True)
class _OnlineParts:
    """What an online history adds to one user's requests, built once per user and model (memoised on
    the view): the exclusions, the history row the engines score, and the items to push down."""

    exclude: np.ndarray
    row: sp.csr_matrix | None
    push_items: np.ndarray
    push_cosines: np.ndarray
    demoted: np.ndarray
    #: engine -> (best list of one row, the history item behind each entry): later requests answer from it
    #: as known users' lists are answered from the precomputed tables
    best: dict[str, tuple[BestLists, np.ndarray]] = field(default_factory=dict)


def _online_parts(rt: Runtime, u: int | None, online: OnlineView) -> _OnlineParts:
    key = -1 if u is None else u
    parts = online.memo.get(key)
    if parts is None:
        seen = rt.seen(u) if u is not None else NO_INDEX
        exclude = np.union1d(seen, online.seen) if online.seen.size else seen
        row = None
        if online.positives.size:
            own = online.row(rt.n_items)
            row = own if u is None else add_rows(rt.history_row(u), own)
        st = rt.settings
        push = neighbour_push(rt.nearest_items, online.negatives, st.negative_neighbours, st.negative_min_cosine)
        parts = _OnlineParts(exclude, row, *push, online.demoted)
        online.memo[key] = parts
    if online.demoted is not parts.demoted:  # demotions change with time: never from a stored list
        parts = replace(parts, demoted=online.demoted, best={})
    return parts


#: Entries of an online user's stored list (``_OnlineParts.best``): enough for the largest k unfiltered.
ONLINE_LIST_LENGTH = 100


def _online_best(
    rt: Runtime, parts: _OnlineParts, engine: str, u: int, row: sp.csr_matrix, scores: Callable[[], np.ndarray]
) -> tuple[BestLists, np.ndarray | None]:
    """The user's best list by ``engine`` under the online history (stored on ``parts`` unless items are
    demoted, which changes with time), and the history item behind each entry when the engine names one."""
    got = parts.best.get(engine)
    if got is None:
        exclude = sp.csr_matrix(
            (np.ones(parts.exclude.size, np.float32), parts.exclude, np.array([0, parts.exclude.size])),
            shape=(1, rt.n_items),
        )
        lists = build(lambda rows: scores()[None, :], 1, rt.n_items, exclude, ONLINE_LIST_LENGTH)
        n = int(lists.lengths[0])
        explanation = rt.engines.get(engine).explain(u, row, lists.items[0, :n])
        # reasons from the list only where the engine names a history item; others explain per request
        why = explanation.strongest_history() if explanation.contributions is not None and row.nnz else None
        got = (lists, why)
        if not parts.demoted.size:
            parts.best[engine] = got
    return got


def _personal(
    rt: Runtime,
    ask: _Ask,
    engine: str,
    u: int,
    row: sp.csr_matrix | None,
    fallback: bool,
    seen_excluded: bool,
    *,
    liked: bool = True,
    strategy: str = "personalised",
    online: _OnlineParts | None = None,
) -> Result:
    """The engine's list for user ``u``: a known user's training history when ``row`` is None (built only
    when needed), else ``row`` (seed items or an online history; u = -1 for a user the model does not
    know). ``seen_excluded``: ``exclude`` is exactly the user's seen items, so a stored best list may
    answer: the precomputed table's, or with ``online`` the one built for this user's online history on
    their first request (the neighbours of their negatives pushed down, items shown too often demoted)."""
    tables = rt.tables
    why: np.ndarray | None = None
    best: tuple[BestLists, int] | None = None

    def scores() -> np.ndarray:
        s = rt.scores(engine, u, row)
        if online is not None:
            s = penalise(s, online.push_items, online.push_cosines, rt.settings.negative_penalty, online.demoted)
        return s

    # The ANN index (large catalogues only) answers unless online negatives or demotions reshape the scores
    # (their penalty needs the spread of all of the user's scores): then the stored list or the full scan.
    # A diversified list's pool is ranked per request: the stored lists hold the best items only.
    approx = None
    if rt.ann is not None and (online is None or not (online.push_items.size or online.demoted.size)):
        approx = rt.ann_personal(engine, u, row, ask.size, ask.mask, ask.exclude)
    stored = ask.diversity == 0
    if stored and online is not None and seen_excluded and approx is None:
        lists, why = _online_best(rt, online, engine, u, row if row is not None else rt.history_row(u), scores)
        best = (lists, 0)
    elif stored and engine == "nn" and u >= 0 and seen_excluded and online is None and tables.user_best:
        best, why = (tables.user_best, u), (tables.user_why[u] if tables.user_why is not None else None)
    hybrid = rt.hybrid_lists if engine == "hybrid" and u >= 0 and seen_excluded and online is None else None
    if stored and hybrid is not None:
        best = (hybrid.lists, u)
    ranked = top(best, scores, ask.size, ask.mask, ask.exclude, rt.popular_scores, rt.n_items, approx)
    if not stored:
        ranked = _diversified(rt, ranked, ask.k, ask.diversity, ask.notes)
    own = ranked.idx[: ranked.n_own]
    explained = hybrid is not None and ranked.positions is not None and _within(ranked.positions, hybrid.codes.shape[1])
    if explained:
        pos = ranked.positions
        order = hybrid.genre_order[u] if hybrid.genre_order is not None else None
        reasons = rt.reasons.from_codes(
            own, hybrid.codes[u][pos], hybrid.liked[u][pos], rt.history_row(u), liked, genre_order=order
        )
    elif ranked.positions is not None and why is not None:
        reasons = rt.reasons.similar_to(why[ranked.positions], liked)
    else:
        history = row if row is not None else rt.history_row(u)
        reasons = rt.reasons.explained(rt.engines.get(engine).explain(u, history, own), history, engine, liked)
    if ranked.n_own < ranked.idx.size:
        reasons += rt.reasons.popular(ranked.idx[ranked.n_own :])
        ask.notes.append(f"{ranked.idx.size - ranked.n_own} item(s) filled from the popular list")
        fallback = True
    items = records(rt.catalogue.base, ranked.idx, ranked.scores, reasons)
    return _result(ask, engine, fallback, strategy, items, ranked.total)


def _within(positions: slice | np.ndarray, n: int) -> bool:
    """Every list position in ``positions`` is below ``n``."""
    if isinstance(positions, slice):
        return (positions.stop or 0) <= n
    return not positions.size or int(positions.max()) < n


def _popular(
    rt: Runtime,
    ask: _Ask,
    fallback: bool,
    *,
    trending: bool = False,
    genre_cols: np.ndarray | None = None,
    seed_cols: np.ndarray | None = None,
) -> Result:
    """Popular (or trending) items; with ``seed_cols`` the seed genres come first, popular overall after."""
    scores = rt.trending_scores if trending else rt.popular_scores
    strategy = "trending" if trending else "popular"
    k, mask, exclude, diversity = ask.k, ask.mask, ask.exclude, ask.diversity
    if seed_cols is not None and seed_cols.size:
        seed_mask = rt.catalogue.genre_masks[seed_cols].any(axis=0)
        ranked = rank(scores, ask.size, seed_mask if mask is None else (mask & seed_mask), exclude, None, rt.n_items)
        if diversity > 0:
            ranked = _diversified(rt, ranked, k, diversity, ask.notes)
        idx, scores_out = ranked.idx, ranked.scores
        reasons = rt.reasons.popular(idx, seed_cols)
        strategy = "seed_genres"
        if idx.size < k:
            left = k - idx.size
            size = pool_size(left) if diversity > 0 else left
            more = rank(scores, size, mask, np.concatenate([exclude, idx]), None, rt.n_items)
            if diversity > 0:
                more = diversify(more, left, rt.served.item_unit, diversity)
            reasons += rt.reasons.popular(more.idx, None, trending)
            idx, scores_out = np.concatenate([idx, more.idx]), np.concatenate([scores_out, more.scores])
            ask.notes.append(f"only {ranked.total} item(s) match the seed genres; the rest are popular overall")
        total = eligible(mask, exclude, rt.n_items)
    else:
        stored = exclude.size == 0 and rt.tables.popular_best and diversity == 0
        best = (rt.tables.popular_best, int(trending)) if stored else None
        ranked = top(best, lambda: scores, ask.size, mask, exclude, None, rt.n_items)
        if diversity > 0:
            ranked = _diversified(rt, ranked, k, diversity, ask.notes)
        idx, scores_out, total = ranked.idx, ranked.scores, ranked.total
        reasons = rt.reasons.popular(idx, genre_cols, trending)
    items = records(rt.catalogue.base, idx, scores_out, reasons)
    return _result(ask, "popular", fallback, strategy, items, total)


def _result(ask: _Ask, engine: str, fallback: bool, strategy: str, items: list, total: int) -> Result:
    return finish(Result(engine, ask.requested, fallback, strategy, items, total, ask.notes, ask.unknown_seeds), ask.k)


def similar(
    rt: Runtime,
    item_id: str,
    k: int,
    *,
    filters: Filters = NO_FILTERS,
    user_id: str | None = None,
    exclude_seen: bool = False,
    item_is_new: bool = False,
    online: OnlineView | None = None,
    diversity: float = 0.0,
) -> Result:
    """Items closest to one item in the served model's item embeddings (cosine), the item itself excluded;
    with ``diversity`` above 0 picked from a larger pool of the closest by maximal marginal relevance."""
    i = rt.item_index(item_id)
    if i is None:
        if item_is_new:
            msg = (
                f"item {item_id!r} appears only in events logged since the model was trained; "
                "it gets an embedding in the next training run"
            )
        elif item_id in rt.catalogue.records:
            msg = f"item {item_id!r} is in the catalogue but has no interactions in the model's training data"
        else:
            msg = f"item {item_id!r} is unknown to the model and the catalogue"
        raise UnknownItem(item_id, msg)
    mask = rt.masks.mask(filters)
    u = rt.user_index(user_id) if user_id is not None else None
    seen = rt.seen(u) if (exclude_seen and u is not None) else None
    if exclude_seen and online is not None and online.seen.size:
        seen = online.seen if seen is None else np.union1d(seen, online.seen)
    exclude = exclusion(seen, np.array([i]))
    size = pool_size(k) if diversity > 0 else k
    best = (rt.tables.item_best, i) if seen is None and rt.tables.item_best and diversity == 0 else None
    approx = rt.ann_similar(i, size, mask, exclude) if rt.ann is not None else None
    ranked = top(best, lambda: rt.item_cosines(i), size, mask, exclude, None, rt.n_items, approx)
    notes: list[str] = []
    if diversity > 0:
        ranked = _diversified(rt, ranked, k, diversity, notes)
    text = rt.catalogue.similar_text[i]
    items = records(rt.catalogue.base, ranked.idx, ranked.scores, [[text] for _ in range(ranked.idx.size)])
    return finish(Result("nn", "nn", False, "similar_item", items, ranked.total, notes), k)


def popular(
    rt: Runtime,
    k: int,
    *,
    filters: Filters = NO_FILTERS,
    trending: bool = False,
    user_id: str | None = None,
    exclude_seen: bool = False,
    online: OnlineView | None = None,
) -> Result:
    """Most popular items (or trending: recency-weighted), filtered; ``exclude_seen`` leaves out the user's
    training and ``online`` seen items.

    Lists that exclude no user's history are cached per runtime: they depend only on the model and the
    query, and ranking them was most of this endpoint's cost. Callers get their own ``notes`` list; the
    items are shared and never changed after they are built."""
    u = rt.user_index(user_id) if (exclude_seen and user_id is not None) else None
    extra = online.seen if exclude_seen and online is not None and online.seen.size else None
    personal = u is not None or extra is not None
    key = (k, trending, filters)
    cached = rt.popular_cache.get(key) if not personal else None
    if cached is not None:
        return replace(cached, notes=list(cached.notes))
    mask = rt.masks.mask(filters)
    exclude = exclusion(rt.seen(u) if u is not None else None, extra)
    genre_cols = rt.catalogue.genre_columns(filters.genres, "genre") if filters.genres else None
    result = _popular(rt, _Ask(k, mask, exclude, "popular"), False, trending=trending, genre_cols=genre_cols)
    if not personal:
        rt.popular_cache.put(key, replace(result, notes=list(result.notes)))
    return result
