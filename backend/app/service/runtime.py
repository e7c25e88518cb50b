"""The serving runtime: one loaded model with everything a request needs precomputed (``loading`` swaps them).

A ``Runtime`` is built once per model (at start-up or on reload), checked, and then only read, so a
handler that took ``app.state.runtime`` at its start finishes on that object even if a reload swaps
in a new one meanwhile. A known user's list usually comes from a precomputed best-first list (the
first k entries that pass the filters); otherwise the work is a few NumPy operations over the
catalogue: one mat-vec (or the engine's ``score``), boolean masks for filters, the seen items as an
index list, and ``top_k_row`` (``argpartition``). Python loops only run over the k returned items.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.config import Settings
from app.model.artifacts import ModelBundle, ModelLoadError
from app.model.base import ItemFeatures, Recommender, top_k_row
from app.model.engines import ENGINES, make_engine
from app.model.heuristic import W_GENRE, W_RATING, genre_match, normalised_rating
from app.service import lists

log = logging.getLogger(__name__)

#: Engines a client may ask for: ``auto`` picks one per user (see ``Runtime.recommend``).
ENGINE_NAMES: tuple[str, ...] = ("auto", *sorted(ENGINES))
#: Fitted when a model is loaded (cheap at any catalogue size); the others on their first request.
EAGER_ENGINES = ("popular", "baseline")
#: Recency half-life of ``/popular?trending=true`` (the popularity engine's ``half_life_days``).
TRENDING_HALF_LIFE_DAYS = 30.0
#: EASE keeps a dense items x items inverse: above this many items the service refuses to fit it.
EASE_MAX_ITEMS = 10_000
#: Seed items a cold-start request may name (each one is a row of the aggregated embedding).
MAX_SEEDS = 100
#: Average rating (1-5) from which the baseline says "highly rated".
HIGHLY_RATED = 4.0
#: Users checked against the model's own scorer when a model is loaded.
CHECK_USERS = 4
#: Filter masks (genres x year range) kept per runtime; the cache is emptied when it is full.
MASK_CACHE_SIZE = 1024
#: Popular lists (k x filters x trending) kept per runtime, same policy: they are the same for every user.
POPULAR_CACHE_SIZE = 1024
#: Scores in responses (and impressions) are rounded to this many decimals.
SCORE_DECIMALS = 6


class UnknownGenre(ValueError):
    """A genre filter that names no genre of the catalogue (a 422 on the field that named it)."""

    def __init__(self, genre: str, known: Sequence[str], field: str = "genres"):
        super().__init__(f"unknown genre {genre!r}; known genres: {', '.join(known) or '(none)'}")
        self.genre = genre
        self.field = field


class EngineUnavailable(ValueError):
    """An engine that exists but cannot serve this model (e.g. EASE on a huge catalogue)."""


class UnknownItem(KeyError):
    """An item the model has no embedding for (a 404 with an explanation)."""

    def __init__(self, item_id: str, message: str):
        super().__init__(message)
        self.item_id = item_id
        self.message = message


@dataclass(frozen=True)
class Filters:
    """Candidate filters, applied as one boolean mask before the top-k cut."""

    genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_items: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.genres or self.year_min is not None or self.year_max is not None or self.exclude_items)


NO_FILTERS = Filters()
_NO_INDEX = np.zeros(0, dtype=np.int64)
_NO_INDEX.flags.writeable = False


@dataclass
class Result:
    """A ranked list and how it was made; ``payload`` is what the HTTP response carries."""

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


def item_features(
    catalogue: dict[str, dict[str, Any]],
    item_ids: Sequence[str],
    avg_rating: np.ndarray | None,
    last_ts: np.ndarray | None,
) -> ItemFeatures:
    """Genres as an items x genres CSR (genre names sorted), aligned with the model's item index."""
    names = sorted({g for iid in item_ids for g in (catalogue.get(iid) or {}).get("genres") or ()})
    col = {g: j for j, g in enumerate(names)}
    rows: list[int] = []
    cols: list[int] = []
    for i, iid in enumerate(item_ids):  # load time only
        for g in (catalogue.get(iid) or {}).get("genres") or ():
            rows.append(i)
            cols.append(col[g])
    genres = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(len(item_ids), len(names)),
    )
    genres.sum_duplicates()
    genres.data[:] = 1.0
    return ItemFeatures(genres=genres, genre_names=names, avg_rating=avg_rating, last_ts=last_ts)


def _remember(cache: dict, key: Any, value: Any, limit: int) -> None:
    """Keep ``value`` in a per-runtime cache, emptied when it holds ``limit`` entries (clients repeat a few
    keys; a client cycling through many only costs the recomputation)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _masked(scores: np.ndarray, mask: np.ndarray | None, exclude: np.ndarray) -> np.ndarray:
    """float32 copy of ``scores`` with the items outside ``mask`` and the ``exclude`` indices at -inf
    (top_k_row drops them)."""
    out = scores.astype(np.float32)  # always a copy
    if mask is not None:
        out[~mask] = -np.inf
    out[exclude] = -np.inf
    return out


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0).astype(np.float32)


def _finite(name: str, a: np.ndarray) -> None:
    if a.size and not np.isfinite(a).all():
        raise ModelLoadError(f"{name} contains NaN or infinite values")


class Runtime:
    """One model, its catalogue and fitted engines, ready to answer requests (read-only after ``check``)."""

    def __init__(
        self,
        bundle: ModelBundle,
        model_dir: Path,
        settings: Settings,
        catalogue: dict[str, dict[str, Any]] | None = None,
        signature: tuple | None = None,
    ):
        self.bundle = bundle
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.signature = signature
        self.loaded_at = time.time()
        self.version: str = str(bundle.version)
        self.metadata: dict[str, Any] = dict(bundle.metadata)
        self.users = bundle.users
        self.items = bundle.items
        self.n_users, self.n_items = len(self.users), len(self.items)
        self.catalogue: dict[str, dict[str, Any]] = catalogue if catalogue is not None else dict(bundle.catalogue)
        self.history: sp.csr_matrix = sp.csr_matrix(bundle.history, dtype=np.float32)
        self.history.sum_duplicates()  # sorted, unique indices: a user's seen items are an exclusion list as they are
        # The same indices as int64 (intp): NumPy converts int32 index arrays on every fancy index (3x the cost).
        self._seen_idx = self.history.indices.astype(np.intp)
        self._seen_ptr = self.history.indptr.tolist()
        if self.history.shape != (self.n_users, self.n_items):
            raise ModelLoadError(
                f"history is {self.history.shape}, expected {(self.n_users, self.n_items)} (users x items)"
            )

        # Embeddings: scores for a known user are one mat-vec against the item factors.
        self.item_factors = np.ascontiguousarray(bundle.item_factors, dtype=np.float32)
        self.item_bias = np.ascontiguousarray(bundle.item_bias, dtype=np.float32).reshape(-1)
        if self.item_factors.shape[0] != self.n_items or self.item_bias.shape[0] != self.n_items:
            raise ModelLoadError(
                f"item_factors {self.item_factors.shape} / item_bias {self.item_bias.shape} do not match {self.n_items} items"
            )
        self.item_unit = _unit_rows(self.item_factors)
        users_all = np.arange(self.n_users, dtype=np.int64)
        self.user_vectors = np.ascontiguousarray(bundle.user_vectors(users_all, self.history), dtype=np.float32)
        history_factors = np.asarray(bundle.history_factors, dtype=np.float32)
        # "similar to X you liked": the history item whose pooled embedding adds most to the score; when the
        # model has no history embeddings, the history item closest to the recommended one (cosine).
        self._uses_history_factors = history_factors.shape == self.item_factors.shape and bool(np.any(history_factors))
        self._explain_history = history_factors if self._uses_history_factors else self.item_unit
        self._explain_items = self.item_factors if self._uses_history_factors else self.item_unit
        self._precompute_tables(settings.precompute_mb * 2**20)
        for name, arr in (
            ("item_factors", self.item_factors),
            ("item_bias", self.item_bias),
            ("user vectors", self.user_vectors),
        ):
            _finite(name, arr)

        self._build_catalogue_arrays(bundle)
        self.features = item_features(self.catalogue, self.items.ids, self.avg_rating, self.last_ts)
        self.genre_names: list[str] = list(self.features.genre_names)
        self._genre_col = {g.lower(): j for j, g in enumerate(self.genre_names)}
        self.genre_masks = np.asarray(self.features.genres.T.todense(), dtype=bool)  # genres x items
        g = self.features.genres
        self._item_genre_cols: list[tuple[int, ...]] = [
            tuple(g.indices[g.indptr[i] : g.indptr[i + 1]].tolist()) for i in range(self.n_items)
        ]
        self._mask_cache: dict[tuple, np.ndarray] = {}
        self._popular_cache: dict[tuple[int, bool, Filters], Result] = {}
        self.engines: dict[str, Recommender] = {}
        self._fit_locks: dict[str, asyncio.Lock] = {}
        self._als_unit: dict[int, np.ndarray] = {}  # ALS item factors, unit rows (reasons), once per fit
        for name in EAGER_ENGINES:
            self.engines[name] = self._fit(name)
        trending = make_engine("popular", half_life_days=TRENDING_HALF_LIFE_DAYS).fit(self.history, self.features)
        self.popular_scores = self._constant_scores(self.engines["popular"])
        self.trending_scores = self._constant_scores(trending)
        self._popular_best = (  # rows: popular, trending; built with the other lists (a few KB)
            lists.build(
                lambda rows: np.stack([self.popular_scores, self.trending_scores])[rows],
                2,
                self.n_items,
                sp.csr_matrix((2, self.n_items)),
                SCORE_DECIMALS,
            )
            if self._user_best is not None
            else None
        )
        # Baseline reasons use the heuristic's own parts: base_ = popularity part + rating part.
        self._rating_part = W_RATING * normalised_rating(self.avg_rating, self.n_items)
        self._pop_part = np.asarray(self.engines["baseline"].base_, dtype=np.float64) - self._rating_part

    # ----- load-time helpers -------------------------------------------------------------------------------
    def _precompute_tables(self, budget_bytes: int) -> None:
        """What a request would otherwise compute, each part when it fits what is left of the budget:
        best-first lists (``lists``: every known user's best unseen items with the history item behind
        each, every item's nearest items; popular and trending come with them), then every known user's
        scores, history-item x item contributions and item x item cosines.

        A request then reads a row instead of doing an (items x dim) mat-vec and a top-k over the
        catalogue: on ML-100K with the default 5 x 64 dims the tables took ~85 of ~300 us of server CPU
        off a /recommendations request and more than half of a /similar request's; on a 27,000-item
        catalogue, whose tables do not fit (2.9 GB each), the lists take the mat-vec off most requests."""
        lists_bytes = lists.BestLists.nbytes(self.n_users + self.n_items, self.n_items)
        lists_bytes += 4 * min(lists.LENGTH, self.n_items) * self.n_users  # the users' reasons
        scores_bytes = 4 * self.n_users * self.n_items
        square_bytes = 4 * self.n_items * self.n_items
        self._user_best: lists.BestLists | None = None  # best unseen items
        self._user_why: np.ndarray | None = None  # [user, list position]: the history item behind the entry
        self._item_best: lists.BestLists | None = None  # nearest items
        self._score_table: np.ndarray | None = None
        self._explain_table: np.ndarray | None = None  # [recommended item, history item]
        self._similar_table: np.ndarray | None = None  # [query item, item]: cosine of the item embeddings
        if lists_bytes <= budget_bytes:
            self._user_best = lists.build(
                lambda rows: self.user_vectors[rows] @ self.item_factors.T + self.item_bias,
                self.n_users,
                self.n_items,
                self.history,
                SCORE_DECIMALS,
            )
            self._user_why = lists.history_reasons(
                self._user_best, self.history, self._explain_history, self._explain_items
            )
            self._item_best = lists.build(
                lambda rows: self.item_unit[rows] @ self.item_unit.T,
                self.n_items,
                self.n_items,
                sp.identity(self.n_items, format="csr"),
                SCORE_DECIMALS,
            )
            budget_bytes -= lists_bytes
        if scores_bytes <= budget_bytes:
            self._score_table = self.user_vectors @ self.item_factors.T + self.item_bias
            budget_bytes -= scores_bytes
        if square_bytes <= budget_bytes:
            self._explain_table = self._explain_items @ self._explain_history.T
            budget_bytes -= square_bytes
        if not self._uses_history_factors and self._explain_table is not None:
            self._similar_table = self._explain_table  # both are item_unit @ item_unit.T
        elif square_bytes <= budget_bytes:
            self._similar_table = self.item_unit @ self.item_unit.T

    def _build_catalogue_arrays(self, bundle: ModelBundle) -> None:
        ids = self.items.ids
        cat = self.catalogue
        self.titles: list[str] = [str((cat.get(i) or {}).get("title") or i) for i in ids]
        self.years = np.array(
            [np.nan if (cat.get(i) or {}).get("year") is None else float(cat[i]["year"]) for i in ids], dtype=np.float64
        )
        self.popularity = np.asarray(bundle.item_popularity, dtype=np.float64)  # users with a positive, per item
        self.avg_rating = np.asarray(bundle.item_avg_rating, dtype=np.float64)  # NaN when unknown
        self.last_ts = np.asarray(bundle.item_last_ts, dtype=np.int64)
        # (item_id, title, genres, year) per item; a response builds k records from them (read-only, shared).
        self._item_base: list[tuple[str, str, list[str], int | None]] = [
            (iid, self.titles[i], list((cat.get(iid) or {}).get("genres") or []), (cat.get(iid) or {}).get("year"))
            for i, iid in enumerate(ids)
        ]
        self._similar_text = [f"similar to {t}" for t in self.titles]  # reasons, formatted once
        self._liked_text = [f"similar to {t} you liked" for t in self.titles]
        # Title search over the whole catalogue (items without interactions too).
        self.catalogue_ids: list[str] = list(cat)
        self._search_titles = np.array(
            [str(cat[i].get("title") or "").lower() for i in self.catalogue_ids], dtype=np.str_
        )
        known = self.items.indices(self.catalogue_ids)
        self._search_pop = np.where(known >= 0, self.popularity[np.maximum(known, 0)] if self.n_items else 0.0, -1.0)
        # genre (lower case) -> boolean mask over the catalogue, for the search's genre filter
        by_genre: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for j, iid in enumerate(self.catalogue_ids):  # load time only
            for g in cat[iid].get("genres") or ():
                by_genre.setdefault(g.lower(), []).append(j)
                names.setdefault(g.lower(), g)
        self._search_genre_masks: dict[str, np.ndarray] = {}
        for g, rows in by_genre.items():
            m = np.zeros(len(self.catalogue_ids), dtype=bool)
            m[rows] = True
            self._search_genre_masks[g] = m
        self._catalogue_genres = sorted(names.values())

    def _fit(self, name: str) -> Recommender:
        if name == "nn":
            return self.bundle.scorer()
        if name == "ease" and self.n_items > EASE_MAX_ITEMS:
            raise EngineUnavailable(
                f"engine 'ease' needs a dense {self.n_items}x{self.n_items} matrix; "
                f"the service serves it for at most {EASE_MAX_ITEMS} items"
            )
        started = time.perf_counter()
        engine = make_engine(name).fit(self.history, self.features)
        log.info("fitted engine %s on model %s in %.2fs", name, self.version, time.perf_counter() - started)
        return engine

    def _constant_scores(self, engine: Recommender) -> np.ndarray:
        empty = sp.csr_matrix((1, self.n_items), dtype=np.float32)
        return np.asarray(engine.score(np.array([-1]), empty), dtype=np.float32)[0]

    def check(self) -> None:
        """Refuse a model whose serving scores disagree with its own scorer or are not finite (before any swap)."""
        if self.n_items == 0:
            raise ModelLoadError("the model has no items")
        scorer = self.bundle.scorer()
        users = np.unique(np.linspace(0, max(0, self.n_users - 1), num=min(CHECK_USERS, self.n_users)).astype(np.int64))
        if users.size:
            ref = np.asarray(scorer.score(users, self.history[users]), dtype=np.float32)
            fast = self.user_vectors[users] @ self.item_factors.T + self.item_bias
            if ref.shape != fast.shape:
                raise ModelLoadError(f"the model's scorer returned shape {ref.shape}, expected {fast.shape}")
            _finite("scores", ref)
            if not np.allclose(ref, fast, rtol=1e-3, atol=1e-3):
                raise ModelLoadError(
                    "the model's scorer and the serving scores disagree (arrays do not belong together)"
                )
        _finite("popular scores", self.popular_scores)

    @property
    def is_engine_ready(self) -> dict[str, bool]:
        return {name: name == "nn" or name in self.engines for name in ENGINES}

    async def ensure_engine(self, name: str) -> None:
        """Fit an engine that is not fitted at load on its first request, off the event loop, once."""
        if name == "nn" or name in self.engines:
            return
        lock = self._fit_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name in self.engines:
                return
            try:
                self.engines[name] = await asyncio.to_thread(self._fit, name)
            except EngineUnavailable:
                raise
            except (ValueError, MemoryError, RuntimeError) as exc:
                raise EngineUnavailable(f"engine {name!r} could not be fitted on this model: {exc}") from exc

    # ----- lookups -----------------------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int | None:
        return self.users.index(user_id)

    def item_index(self, item_id: str) -> int | None:
        return self.items.index(item_id)

    def seen(self, u: int) -> np.ndarray:
        """Item indices in the user's training history (a slice, no copy; sorted and unique)."""
        return self._seen_idx[self._seen_ptr[u] : self._seen_ptr[u + 1]]

    def genre_index(self, genre: str, field: str = "genres") -> int:
        """Column of a genre, case-insensitive; ``field`` names the request field for the 422."""
        j = self._genre_col.get(genre.strip().lower())
        if j is None:
            raise UnknownGenre(genre, self.genre_names, field)
        return j

    def candidates(self, filters: Filters) -> np.ndarray | None:
        """Boolean mask over items that pass the filters, or None when nothing is filtered.

        Genre and year masks are cached per combination (clients repeat a few of them); the cached
        arrays are read-only, so a request can never change another's mask."""
        if not filters.active:
            return None
        key = (tuple(sorted(g.strip().lower() for g in filters.genres)), filters.year_min, filters.year_max)
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = np.ones(self.n_items, dtype=bool)
            if filters.genres:
                cols = [self.genre_index(g) for g in filters.genres]
                mask &= self.genre_masks[cols].any(axis=0)
            if filters.year_min is not None:
                mask &= self.years >= filters.year_min  # unknown years (NaN) fail both bounds
            if filters.year_max is not None:
                mask &= self.years <= filters.year_max
            mask.flags.writeable = False
            _remember(self._mask_cache, key, mask, MASK_CACHE_SIZE)
        if filters.exclude_items:
            idx = self.items.indices(filters.exclude_items)
            mask = mask.copy()
            mask[idx[idx >= 0]] = False
        return mask

    @staticmethod
    def _exclusion(seen: np.ndarray | None, extra: np.ndarray | None = None) -> np.ndarray:
        """Unique indices of the items never to return (seen items, the query item); read-only.

        Indices rather than a boolean mask: the common case (a user's seen items) is a slice of the
        history CSR, used as it is, where a mask costs an allocation and a pass over the catalogue."""
        if seen is None or seen.size == 0:
            return _NO_INDEX if extra is None else extra
        return seen if extra is None or extra.size == 0 else np.union1d(seen, extra)

    # ----- ranking -----------------------------------------------------------------------------------------
    def _rank(
        self,
        scores: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        fill: bool = True,
        total: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Top k over the eligible items; returns (idx, scores, n_own, number of eligible items).

        Items an engine scores -inf (outside its pool) are filled from the popular list (same mask):
        the first ``n_own`` items are the engine's own, the rest (if any) come from the fill.
        ``total``: the eligible count when the caller has it already."""
        total = self._eligible(mask, exclude) if total is None else total
        idx, top = top_k_row(_masked(scores, mask, exclude), k)
        n_own = idx.size
        want = min(k, total)
        if fill and n_own < want:
            pidx, ptop = top_k_row(_masked(self.popular_scores, mask, np.concatenate([exclude, idx])), want - n_own)
            idx = np.concatenate([idx, pidx])
            top = np.concatenate([top, ptop])
        return idx, top, n_own, total

    def _top(
        self,
        best: tuple[lists.BestLists, int] | None,
        scores: Callable[[], np.ndarray],
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        fill: bool = True,
    ) -> tuple[slice | np.ndarray | None, np.ndarray, np.ndarray, int, int]:
        """Top k as (list positions or None, idx, scores, n_own, number of eligible items): from the
        precomputed list row ``best`` when it holds the answer (it must leave out exactly ``exclude``),
        else by ranking ``scores()`` (called only then) as ``_rank`` does."""
        total = None
        if best is not None:
            total = self._eligible(mask, exclude)
            found = lists.first_k(best[0], best[1], k, mask, total)
            if found is not None:
                pos, idx, top = found
                return pos, idx, top, idx.size, total
        return (None, *self._rank(scores(), k, mask, exclude, fill, total))

    def _records(self, idx: np.ndarray, scores: np.ndarray, reasons: list[list[str]]) -> list[dict[str, Any]]:
        """The response's items. ``scores``: float32 from ranking (rounded here), or float64 already rounded
        to ``SCORE_DECIMALS`` (the precomputed lists, which saves two NumPy calls per request)."""
        if scores.dtype == np.float64:
            vals = scores.tolist()
        else:
            vals = scores.astype(np.float64).round(SCORE_DECIMALS).tolist()
        base = self._item_base
        return [
            {"item_id": b[0], "title": b[1], "genres": b[2], "year": b[3], "score": s, "rank": r, "reasons": why}
            for r, (b, s, why) in enumerate(zip([base[i] for i in idx.tolist()], vals, reasons, strict=True), start=1)
        ]

    # ----- reasons -----------------------------------------------------------------------------------------
    def _contributions(self, engine: str, history_idx: np.ndarray, top: np.ndarray) -> np.ndarray:
        """h x k: how much each history item adds to each recommended item's score, in the engine's own terms.

        nn: pooled history embedding . item embedding; itemknn: the item-item cosine it sums; ease: the
        item-item weight it sums; als: cosine of the ALS item factors (ALS re-solves the user, so there is
        no exact additive split)."""
        model = self.engines.get(engine)
        if engine == "itemknn" and getattr(model, "similarity_", None) is not None:
            return np.asarray(model.similarity_[history_idx][:, top].todense())
        if engine == "ease" and getattr(model, "weights_", None) is not None:
            return model.weights_[np.ix_(history_idx, top)]
        if engine == "als" and getattr(model, "model_", None) is not None:
            f = self._als_unit.get(id(model))
            if f is None:
                f = self._als_unit[id(model)] = _unit_rows(np.asarray(model.model_.item_factors, dtype=np.float32))
            return f[history_idx] @ f[top].T
        if self._explain_table is not None:  # two take()s: ~2x faster than one 2-D fancy index for long histories
            return self._explain_table.take(top, axis=0).take(history_idx, axis=1).T
        return self._explain_history[history_idx] @ self._explain_items[top].T

    def _reasons_history(
        self, history_idx: np.ndarray, top: np.ndarray, liked: bool = True, engine: str = "nn"
    ) -> list[list[str]]:
        """For each recommended item, the history item that contributes most to its score."""
        if history_idx.size == 0 or top.size == 0:
            return [["recommended for you"] for _ in range(top.size)]
        contrib = self._contributions(engine, history_idx, top)  # h x k
        return self._similar_to(history_idx[contrib.argmax(axis=0)], liked)

    def _similar_to(self, items: np.ndarray, liked: bool = False) -> list[list[str]]:
        """"similar to <title>" (" you liked" for the user's own history) for each item, as reason lists."""
        texts = self._liked_text if liked else self._similar_text
        return [[texts[j]] for j in items.tolist()]

    def _reasons_seeds(self, seeds: np.ndarray, top: np.ndarray) -> list[list[str]]:
        sims = self.item_unit[seeds] @ self.item_unit[top].T  # s x k
        return self._similar_to(seeds[sims.argmax(axis=0)])

    def _item_genre(self, i: int, prefer: list[int] | None = None) -> str | None:
        """The item's genre to name: the first of ``prefer`` (genre columns) it has, else its first genre."""
        cols = self._item_genre_cols[i]
        if not cols:
            return None
        for c in prefer or ():
            if c in cols:
                return self.genre_names[c]
        return self.genre_names[cols[0]]

    def _reasons_popular(self, top: np.ndarray, genre_cols: np.ndarray | None, trending: bool) -> list[list[str]]:
        if trending:
            return [["trending"] for _ in range(top.size)]
        if genre_cols is None or not genre_cols.size:
            return [["popular overall"] for _ in range(top.size)]
        prefer = genre_cols.tolist()
        return [[self._popular_text(i, prefer)] for i in top.tolist()]

    def _popular_text(self, i: int, prefer: list[int] | None) -> str:
        g = self._item_genre(i, prefer)
        return f"popular in {g}" if g else "popular overall"

    def _reasons_baseline(self, history_row: sp.csr_matrix, top: np.ndarray) -> list[list[str]]:
        """The heuristic's three parts for each item, largest first: genre match, popularity, rating."""
        if top.size == 0:
            return []
        if self.features.genres is not None and self.features.genres.shape[1] and history_row.nnz:
            match = genre_match(history_row, self.features.genres)[0][top] * W_GENRE
            profile = np.asarray((history_row @ self.features.genres).todense()).ravel()  # genre counts of the history
            prefer = np.argsort(-profile, kind="stable")[: int(np.count_nonzero(profile))].tolist()
        else:
            match = np.zeros(top.size)
            prefer = None
        out = []
        for n, i in enumerate(top.tolist()):
            parts = []
            if match[n] > 0:
                parts.append((float(match[n]), "matches your genres"))
            parts.append((float(self._pop_part[i]), self._popular_text(i, prefer)))
            if np.isfinite(self.avg_rating[i]) and self.avg_rating[i] >= HIGHLY_RATED:
                parts.append((float(self._rating_part[i]), f"highly rated ({self.avg_rating[i]:.1f}/5)"))
            parts.sort(key=lambda p: -p[0])
            out.append([p[1] for p in parts])
        return out

    # ----- requests ----------------------------------------------------------------------------------------
    def _history_row(self, u: int) -> sp.csr_matrix:
        """The user's training row as a 1 x n_items CSR (built from the slices; scipy's row indexing is slower)."""
        lo, hi = self.history.indptr[u], self.history.indptr[u + 1]
        return sp.csr_matrix(
            (self.history.data[lo:hi], self.history.indices[lo:hi], np.array([0, hi - lo])), shape=(1, self.n_items)
        )

    def _row(self, indices: np.ndarray) -> sp.csr_matrix:
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        return sp.csr_matrix(
            (np.ones(indices.size, np.float32), indices, np.array([0, indices.size])), shape=(1, self.n_items)
        )

    def recommend(
        self,
        user_id: str | None,
        k: int,
        engine: str = "auto",
        *,
        exclude_seen: bool = True,
        filters: Filters = NO_FILTERS,
        seed_item_ids: Sequence[str] = (),
        seed_genres: Sequence[str] = (),
        user_is_new: bool = False,
    ) -> Result:
        """Top-k for a user (known or not) with the requested engine.

        Known user with history: the engine asked for; ``auto`` is ``nn`` from ``min_history_for_nn``
        positives, the baseline below that (``fallback_used``). Unknown user (or no history): with
        known ``seed_item_ids``, the engine scores the seeds as a history (``nn``: their pooled
        embeddings, or cosine to their mean when the model has no history embeddings); otherwise
        popular items, ``seed_genres`` first (``fallback_used`` unless ``popular`` was asked for).
        ``user_is_new``: the store has events for this user logged since training (we cannot
        personalise for them until the next training run, and say so).
        """
        if engine not in ENGINE_NAMES:
            raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_NAMES)}")
        mask = self.candidates(filters)
        u = self.user_index(user_id) if user_id is not None else None
        notes: list[str] = []
        unknown_seeds: list[str] = []
        seed_idx = _NO_INDEX
        if seed_item_ids:
            found = self.items.indices(seed_item_ids)
            unknown_seeds = [s for s, i in zip(seed_item_ids, found.tolist(), strict=True) if i < 0]
            seed_idx = np.unique(found[found >= 0])
            if unknown_seeds:
                notes.append(
                    f"{len(unknown_seeds)} seed item(s) are unknown to the model and were ignored: "
                    + ", ".join(unknown_seeds[:10])
                )
        seed_cols = (
            np.array([self.genre_index(g, "seed_genres") for g in seed_genres], dtype=np.int64)
            if seed_genres
            else _NO_INDEX
        )
        hist = self.seen(u) if u is not None else _NO_INDEX
        exclude = self._exclusion(hist if exclude_seen else None, seed_idx if seed_idx.size else None)

        if u is None and user_id is not None:
            if user_is_new:
                notes.append(
                    f"user {user_id!r} has events logged since the model was trained; "
                    "personalised recommendations start after the next training run"
                )
            else:
                notes.append(f"user {user_id!r} is unknown to the model")

        wanted = "nn" if engine == "auto" else engine
        # Pick what can actually serve this request.
        genre_cols = (
            np.array([self.genre_index(g) for g in filters.genres], dtype=np.int64) if filters.genres else _NO_INDEX
        )
        if wanted == "popular":
            return self._popular_result(
                k,
                mask,
                exclude,
                engine,
                notes,
                unknown_seeds,
                fallback=False,
                genre_cols=genre_cols,
                seed_cols=seed_cols,
            )
        if u is not None and hist.size > 0:
            if seed_item_ids or seed_genres:
                notes.append("seed_item_ids and seed_genres are for users without history; this user's history is used")
            if engine == "auto" and hist.size < self.settings.min_history_for_nn:
                wanted = "baseline"
                notes.append(
                    f"the user has {hist.size} positive(s), fewer than {self.settings.min_history_for_nn} "
                    "needed for the personalised model; using the baseline"
                )
            return self._personal_result(
                wanted,
                u,
                hist,
                None,
                k,
                mask,
                exclude,
                engine,
                notes,
                unknown_seeds,
                fallback=wanted != ("nn" if engine == "auto" else engine),
                seen_excluded=exclude_seen and not seed_idx.size,
            )
        if seed_idx.size:
            if wanted == "nn" and not self._uses_history_factors:
                return self._seed_result(seed_idx, k, mask, exclude, engine, notes, unknown_seeds)
            # Engines score a user from a history row (the nn model pools its items' embeddings): the seeds
            # stand in for one.
            return self._personal_result(
                wanted,
                -1,
                seed_idx,
                self._row(seed_idx),
                k,
                mask,
                exclude,
                engine,
                notes,
                unknown_seeds,
                fallback=False,
                liked=False,
                strategy="seed_items",
            )
        if u is not None and engine != "auto":
            notes.append("the user has no history in the model")
        if seed_item_ids and not seed_idx.size:
            notes.append("no seed item is known to the model")
        return self._popular_result(
            k, mask, exclude, engine, notes, unknown_seeds, fallback=True, genre_cols=genre_cols, seed_cols=seed_cols
        )

    def _eligible(self, mask: np.ndarray | None, exclude: np.ndarray) -> int:
        """Items that pass the filters and are not excluded (``exclude`` holds unique indices)."""
        if mask is None:
            return self.n_items - exclude.size
        return int(np.count_nonzero(mask)) - int(np.count_nonzero(mask[exclude]))

    def _popular_result(
        self,
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        requested: str,
        notes: list[str],
        unknown_seeds: list[str],
        *,
        fallback: bool,
        trending: bool = False,
        genre_cols: np.ndarray | None = None,
        seed_cols: np.ndarray | None = None,
    ) -> Result:
        """Popular (or trending) items; with ``seed_cols`` the seed genres come first, popular overall after."""
        scores = self.trending_scores if trending else self.popular_scores
        strategy = "trending" if trending else "popular"
        if seed_cols is not None and seed_cols.size:
            seed_mask = self.genre_masks[seed_cols].any(axis=0)
            narrowed = seed_mask if mask is None else (mask & seed_mask)
            idx, top, _, in_genres = self._rank(scores, k, narrowed, exclude, fill=False)
            reasons = self._reasons_popular(idx, seed_cols, False)
            strategy = "seed_genres"
            if idx.size < k:
                ex = np.concatenate([exclude, idx])  # idx never overlaps exclude: still unique
                more, more_top, _, _ = self._rank(scores, k - idx.size, mask, ex, fill=False)
                reasons += self._reasons_popular(more, None, trending)
                idx, top = np.concatenate([idx, more]), np.concatenate([top, more_top])
                notes.append(f"only {in_genres} item(s) match the seed genres; the rest are popular overall")
            total = self._eligible(mask, exclude)
        else:
            best = (self._popular_best, int(trending)) if exclude.size == 0 and self._popular_best is not None else None
            _, idx, top, _, total = self._top(best, lambda: scores, k, mask, exclude, fill=False)
            reasons = self._reasons_popular(idx, genre_cols, trending)
        return self._finish(
            Result(
                "popular", requested, fallback, strategy, self._records(idx, top, reasons), total, notes, unknown_seeds
            ),
            k,
        )

    def _item_cosines(self, i: int) -> np.ndarray:
        return self._similar_table[i] if self._similar_table is not None else self.item_unit @ self.item_unit[i]

    def _scores(self, engine: str, u: int, row: sp.csr_matrix | None) -> np.ndarray:
        """The engine's scores over the catalogue for user ``u`` (or, with u = -1, for the history ``row``)."""
        if engine == "nn" and u >= 0 and self._score_table is not None:
            return self._score_table[u]
        if engine == "nn":
            vec = (
                self.user_vectors[u]
                if u >= 0
                else np.asarray(self.bundle.user_vectors(np.array([-1]), row), np.float32)[0]
            )
            return self.item_factors @ vec + self.item_bias
        model = self.engines.get(engine)
        if model is None:
            raise EngineUnavailable(f"engine {engine!r} is not fitted yet")
        return np.asarray(model.score(np.array([u]), row), dtype=np.float32)[0]

    def _personal_result(
        self,
        engine: str,
        u: int,
        hist: np.ndarray,
        row: sp.csr_matrix | None,
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        requested: str,
        notes: list[str],
        unknown_seeds: list[str],
        *,
        fallback: bool,
        liked: bool = True,
        strategy: str = "personalised",
        seen_excluded: bool = False,
    ) -> Result:
        """``seen_excluded``: ``exclude`` is exactly the user's seen items (the precomputed list may answer)."""
        if row is None and engine != "nn":
            row = self._history_row(u)  # the engines score, and the baseline explains, from the history row
        best = None
        if engine == "nn" and u >= 0 and seen_excluded and self._user_best is not None:
            best = (self._user_best, u)  # the list leaves out exactly the seen items
        pos, idx, top, n_own, total = self._top(best, lambda: self._scores(engine, u, row), k, mask, exclude)
        own = idx[:n_own]
        if pos is not None and self._user_why is not None:
            reasons = self._similar_to(self._user_why[u][pos], liked)
        elif engine == "baseline":
            reasons = self._reasons_baseline(row, own)
        elif engine in ("nn", "itemknn", "ease", "als"):
            reasons = self._reasons_history(hist, own, liked=liked, engine=engine)
        else:
            reasons = [[f"recommended by {engine}"] for _ in range(own.size)]
        if n_own < idx.size:
            reasons += self._reasons_popular(idx[n_own:], None, False)
            notes.append(f"{idx.size - n_own} item(s) filled from the popular list")
            fallback = True
        return self._finish(
            Result(
                engine, requested, fallback, strategy, self._records(idx, top, reasons), total, notes, unknown_seeds
            ),
            k,
        )

    def _seed_result(
        self,
        seeds: np.ndarray,
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        requested: str,
        notes: list[str],
        unknown_seeds: list[str],
    ) -> Result:
        """Items closest (cosine) to the mean of the seeds' unit item embeddings (models without history
        embeddings, which cannot build a user from items)."""
        query = self.item_unit[seeds].mean(axis=0)
        scores = self.item_unit @ query
        idx, top, _, total = self._rank(scores, k, mask, exclude, fill=False)
        reasons = self._reasons_seeds(seeds, idx)
        return self._finish(
            Result("nn", requested, False, "seed_items", self._records(idx, top, reasons), total, notes, unknown_seeds),
            k,
        )

    def _finish(self, result: Result, k: int) -> Result:
        if len(result.items) < k:
            result.notes.append(
                f"only {result.total_candidates} item(s) are left after filters and exclusions; "
                f"returning {len(result.items)} of the {k} requested"
            )
        return result

    def similar(
        self,
        item_id: str,
        k: int,
        *,
        filters: Filters = NO_FILTERS,
        user_id: str | None = None,
        exclude_seen: bool = False,
        item_is_new: bool = False,
    ) -> Result:
        """Items closest to one item in the model's item embeddings (cosine), the item itself excluded."""
        i = self.item_index(item_id)
        if i is None:
            if item_is_new:
                msg = (
                    f"item {item_id!r} appears only in events logged since the model was trained; "
                    "it gets an embedding in the next training run"
                )
            elif item_id in self.catalogue:
                msg = f"item {item_id!r} is in the catalogue but has no interactions in the model's training data"
            else:
                msg = f"item {item_id!r} is unknown to the model and the catalogue"
            raise UnknownItem(item_id, msg)
        mask = self.candidates(filters)
        u = self.user_index(user_id) if user_id is not None else None
        seen = self.seen(u) if (exclude_seen and u is not None) else None
        exclude = self._exclusion(seen, np.array([i]))
        best = (self._item_best, i) if seen is None and self._item_best is not None else None
        _, idx, top, _, total = self._top(best, lambda: self._item_cosines(i), k, mask, exclude, fill=False)
        reasons = [[self._similar_text[i]] for _ in range(idx.size)]
        return self._finish(Result("nn", "nn", False, "similar_item", self._records(idx, top, reasons), total), k)

    def popular(
        self,
        k: int,
        *,
        filters: Filters = NO_FILTERS,
        trending: bool = False,
        user_id: str | None = None,
        exclude_seen: bool = False,
    ) -> Result:
        """Most popular items (or trending: recency-weighted), filtered.

        Lists that exclude no user's history are cached per runtime: they depend only on the model and the
        query, and ranking them was most of this endpoint's cost. Callers get their own ``notes`` list; the
        items are shared and never changed after they are built."""
        u = self.user_index(user_id) if (exclude_seen and user_id is not None) else None
        key = (k, trending, filters)
        cached = self._popular_cache.get(key) if u is None else None
        if cached is not None:
            return replace(cached, notes=list(cached.notes))
        mask = self.candidates(filters)
        exclude = self._exclusion(self.seen(u) if u is not None else None)
        genre_cols = (
            np.array([self.genre_index(g, "genre") for g in filters.genres], dtype=np.int64) if filters.genres else None
        )
        result = self._popular_result(
            k, mask, exclude, "popular", [], [], fallback=False, trending=trending, genre_cols=genre_cols
        )
        if u is None:
            _remember(self._popular_cache, key, replace(result, notes=list(result.notes)), POPULAR_CACHE_SIZE)
        return result

    # ----- catalogue -------------------------------------------------------------------------------------------
    def item_details(self, item_id: str) -> dict[str, Any] | None:
        i = self.item_index(item_id)
        cat = self.catalogue.get(item_id)
        if i is None and cat is None:
            return None
        out: dict[str, Any] = dict(cat or {"item_id": item_id, "title": item_id, "genres": [], "year": None})
        out["item_id"] = item_id
        out["in_model"] = i is not None
        if i is not None:
            out["popularity"] = int(self.popularity[i])
            avg = self.avg_rating[i]
            out["avg_rating"] = round(float(avg), 3) if np.isfinite(avg) else None
            out["popularity_rank"] = int(np.count_nonzero(self.popular_scores > self.popular_scores[i])) + 1
        else:
            out.update(popularity=0, avg_rating=None, popularity_rank=None)
        return out

    def search(self, query: str | None, genre: str | None, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Catalogue items whose title contains ``query`` (case-insensitive), most popular first; prefix matches
        first. Returns (items, number of matches)."""
        n = len(self.catalogue_ids)
        mask = np.ones(n, dtype=bool)
        prefix = np.zeros(n, dtype=bool)
        if query:
            q = query.strip().lower()
            pos = np.strings.find(self._search_titles, q)
            mask &= pos >= 0
            prefix = pos == 0
        if genre:
            gmask = self._search_genre_masks.get(genre.strip().lower())
            if gmask is None:
                raise UnknownGenre(genre, self._catalogue_genres, "genre")
            mask &= gmask
        hits = np.flatnonzero(mask)
        order = np.lexsort((-self._search_pop[hits], ~prefix[hits]))
        chosen = hits[order[:limit]]
        out = []
        for j in chosen.tolist():
            iid = self.catalogue_ids[j]
            c = self.catalogue[iid]
            pop = self._search_pop[j]
            out.append(
                {
                    "item_id": iid,
                    "title": c.get("title"),
                    "genres": list(c.get("genres") or []),
                    "year": c.get("year"),
                    "popularity": None if pop < 0 else int(pop),
                }
            )
        return out, int(hits.size)

    def ready_info(self) -> dict[str, Any]:
        return {
            "status": "ready",
            "model_version": self.version,
            "model_type": self.metadata.get("model_type"),
            "trained_at": self.metadata.get("created_at"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "model_dir": str(self.model_dir),
            "users": self.n_users,
            "items": self.n_items,
            "catalogue_items": len(self.catalogue),
            "genres": self.genre_names,
            "engines": {name: ("ready" if ok else "fitted on first use") for name, ok in self.is_engine_ready.items()},
        }


def parse_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Deduplicate ids, keep order (requests may repeat an id)."""
    return tuple(dict.fromkeys(str(v) for v in values))
