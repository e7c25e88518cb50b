"""The serving runtime: one loaded model with everything a request reads from it (``loading`` swaps them).

A ``Runtime`` is built once per model (at start-up or on reload), checked, and then only read, so a
request that took it at its start finishes on that object even if a reload swaps in a new one
meanwhile. It holds the model's history (seen items), its engines, catalogue, filter masks and
precomputed tables; ``strategies`` turns a request into a list with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.config import Settings
from app.data.features import item_features
from app.model import ann
from app.model.artifacts import ModelBundle, ModelLoadError
from app.model.base import csr_row, history_items, top_k_row
from app.model.embedding_scoring import SavedEmbedding
from app.model.engines import engine_class
from app.model.popularity import PopularityRecommender
from app.service.core.catalogue import Catalogue
from app.service.core.filters import BoundedCache, CandidateMasks
from app.service.core.fitted import FittedEngines
from app.service.core.precompute import HybridLists, hybrid_lists, precompute
from app.service.core.reasons import ReasonTexts

#: Recency half-life of ``/popular?trending=true``.
TRENDING_HALF_LIFE_DAYS = 30.0
#: Users checked against the served model's own scores when a model is loaded.
CHECK_USERS = 4
#: Popular lists (k x filters x trending) kept per runtime: they are the same for every user.
POPULAR_CACHE_SIZE = 1024

log = logging.getLogger(__name__)


def _finite(name: str, a: np.ndarray) -> None:
    if a.size and not np.isfinite(a).all():
        raise ModelLoadError(f"{name} contains NaN or infinite values")


def _constant_scores(engine: Any, n_items: int) -> np.ndarray:
    """The scores of an engine that ranks every user alike (popular, trending)."""
    return np.asarray(engine.score(np.array([-1]), sp.csr_matrix((1, n_items), dtype=np.float32)), np.float32)[0]


class Runtime:
    """One model, its catalogue and engines, ready to answer requests (read-only after ``check``)."""

    def __init__(
        self,
        bundle: ModelBundle,
        model_dir: Path,
        settings: Settings,
        catalogue: dict[str, dict[str, Any]] | None = None,
        signature: tuple | None = None,
    ):
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.signature = signature
        self.loaded_at = time.time()
        self.version: str = str(bundle.version)
        self.metadata: dict[str, Any] = dict(bundle.metadata)
        self.users = bundle.users
        self.items = bundle.items
        self.n_users, self.n_items = len(self.users), len(self.items)
        self.history: sp.csr_matrix = sp.csr_matrix(bundle.history, dtype=np.float32)
        self.history.sum_duplicates()
        if self.history.shape != (self.n_users, self.n_items):
            raise ModelLoadError(
                f"history is {self.history.shape}, expected {(self.n_users, self.n_items)} (users x items)"
            )
        # Every item a user interacted with, positive or not (a model without the seen arrays: its positives).
        # Sorted, unique indices, so a user's slice is an exclusion list as it is.
        seen = sp.csr_matrix(getattr(bundle, "seen", self.history), dtype=np.float32)
        seen.sum_duplicates()
        self.seen_matrix = seen
        # The same indices as intp: NumPy converts int32 index arrays on every fancy index (3x the cost).
        self._seen_idx = seen.indices.astype(np.intp)
        self._seen_ptr = seen.indptr.tolist()
        #: Positives per user (a plain list: read once per request by the ``auto`` engine rule).
        self.history_counts: list[int] = np.diff(self.history.indptr).tolist()
        through = (self.metadata.get("data_summary") or {}).get("online_through") or {}
        #: (events id, engagements id) of the store's rows the model was trained on: newer rows are online history.
        self.online_through: tuple[int, int] = (int(through.get("events") or 0), int(through.get("engagements") or 0))

        self.served: SavedEmbedding = bundle.scorer()
        if self.served.item_factors.shape[0] != self.n_items or self.served.item_bias.shape[0] != self.n_items:
            raise ModelLoadError(
                f"item_factors {self.served.item_factors.shape} / item_bias {self.served.item_bias.shape} "
                f"do not match {self.n_items} items"
            )
        records = catalogue if catalogue is not None else dict(bundle.catalogue)
        popularity = np.asarray(bundle.item_popularity, dtype=np.float64)
        avg_rating = np.asarray(bundle.item_avg_rating, dtype=np.float64)
        self.features = item_features(self.items.ids, records, avg_rating, np.asarray(bundle.item_last_ts, np.int64))
        hybrid = (lambda: bundle.hybrid(self.served)) if bundle.has_hybrid else None
        chosen = ((self.metadata.get("metrics") or {}).get("hybrid") or {}).get("auto")
        #: What ``auto`` serves to users with enough history: the hybrid engine when training found it
        #: better than the embedding model on validation and its lists are built at load (up to
        #: ``hybrid_precompute_users`` users: ranked per request it costs ~30x the embedding model's
        #: precomputed lists), else the embedding model. ``engine=hybrid`` serves it either way.
        fits = settings.precompute_mb > 0 and 0 < self.n_users <= settings.hybrid_precompute_users
        self.auto_engine = "hybrid" if hybrid is not None and chosen == "hybrid" and fits else "nn"
        self.engines = FittedEngines(
            self.served,
            self.history,
            self.features,
            self.version,
            hybrid=hybrid,
            eager=("hybrid",) if self.auto_engine == "hybrid" else (),
        )
        self.popular_scores = _constant_scores(self.engines.get("popular"), self.n_items)
        trending = PopularityRecommender(half_life_days=TRENDING_HALF_LIFE_DAYS).fit(self.history, self.features)
        self.trending_scores = _constant_scores(trending, self.n_items)
        self.catalogue = Catalogue(self.items, records, self.features, popularity, avg_rating, self.popular_scores)
        self.masks = CandidateMasks(self.items, self.catalogue)
        self.reasons = ReasonTexts(self.catalogue)
        self.popular_cache: BoundedCache[Any] = BoundedCache(POPULAR_CACHE_SIZE)
        self.tables = precompute(
            self.served,
            self.history,
            self.seen_matrix,
            self.served.item_unit,
            self.popular_scores,
            self.trending_scores,
            settings.precompute_mb * 2**20,
        )
        #: The hybrid engine's lists of every known user, when ``auto`` serves it and the users are few
        #: enough (``hybrid_precompute_users``): its per-request cost is several times the embedding model's.
        #: Built by ``build_hybrid_lists`` (a background thread started at load: 2 s on ML-100K, about
        #: 27 s for 14,000 users x 5,500 items); until then hybrid lists are ranked per request.
        self.hybrid_lists: HybridLists | None = None
        #: ANN indexes (``app.model.ann``) from ``ann_min_items`` items on, else None (every request exact).
        self.ann: AnnIndexes | None = None
        if settings.ann_min_items > 0 and self.n_items >= settings.ann_min_items:
            self.ann = AnnIndexes(self.served, settings)

    def build_hybrid_lists(self) -> None:
        """Every known user's hybrid list, when ``auto`` serves the hybrid engine (one assignment at the
        end: requests see either no lists or all of them)."""
        if self.auto_engine != "hybrid":
            return
        started = time.perf_counter()
        engine = self.engines.get("hybrid")
        self.hybrid_lists = hybrid_lists(engine, self.history, self.seen_matrix, self.catalogue.genres)
        log.info("hybrid lists of model %s built in %.1fs", self.version, time.perf_counter() - started)

    def check(self) -> None:
        """Refuse a model that cannot serve (before any swap): no items, non-finite arrays or scores, or
        precomputed scores that disagree with the served model's own."""
        if self.n_items == 0:
            raise ModelLoadError("the model has no items")
        s = self.served
        for name, arr in (
            ("item_factors", s.item_factors),
            ("item_bias", s.item_bias),
            ("user_factors", s.user_factors),
            ("history_factors", s.history_factors),
            ("popular scores", self.popular_scores),
            ("item_popularity", self.catalogue.popularity),
            ("history weights", self.history.data),
        ):
            _finite(name, arr)
        if np.isinf(self.catalogue.avg_rating).any():  # NaN means "unknown"; infinity is broken
            raise ModelLoadError("item_avg_rating contains infinite values")
        if (self.catalogue.popularity < 0).any():
            raise ModelLoadError("item_popularity contains negative counts")
        if not np.any(s.item_factors):
            raise ModelLoadError("item_factors are all zero: every item would score the same (a broken training run)")
        users = np.unique(np.linspace(0, max(0, self.n_users - 1), num=min(CHECK_USERS, self.n_users)).astype(np.int64))
        for u in users.tolist():
            ref = np.asarray(s.score(np.array([u]), self.history[u]), dtype=np.float32)[0]
            _finite("scores", ref)
            if self.tables.user_scores is not None and not np.allclose(
                ref, self.tables.user_scores[u], rtol=1e-3, atol=1e-3
            ):
                raise ModelLoadError(
                    "the served model and its precomputed scores disagree (arrays do not belong together)"
                )

    # ----- lookups ---------------------------------------------------------------------------------------
    def user_index(self, user_id: str) -> int | None:
        return self.users.index(user_id)

    def item_index(self, item_id: str) -> int | None:
        return self.items.index(item_id)

    def seen(self, u: int) -> np.ndarray:
        """Item indices the user interacted with in the training data, by any event type that counts as
        seen (a slice, no copy; sorted and unique)."""
        return self._seen_idx[self._seen_ptr[u] : self._seen_ptr[u + 1]]

    def history_row(self, u: int) -> sp.csr_matrix:
        """The user's training row as a 1 x n_items CSR (what engines score and explain)."""
        return csr_row(self.history, u)

    def row(self, indices: np.ndarray) -> sp.csr_matrix:
        """A one-row history of the given items (seed items), weight 1 each."""
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        return sp.csr_matrix(
            (np.ones(indices.size, np.float32), indices, np.array([0, indices.size])), shape=(1, self.n_items)
        )

    def scores(self, engine: str, u: int, row: sp.csr_matrix | None = None) -> np.ndarray:
        """The engine's scores over the catalogue for user ``u`` (-1: unknown) with history ``row`` (None: the
        user's training history; the served model's scores of known users may come from the precomputed table)."""
        if row is None:
            if engine == "nn" and self.tables.user_scores is not None:
                return self.tables.user_scores[u]
            row = self.history_row(u)
        return np.asarray(self.engines.get(engine).score(np.array([u]), row), dtype=np.float32)[0]

    def item_cosines(self, i: int) -> np.ndarray:
        """Cosine of every item's embedding to item ``i``'s (what ``/similar`` ranks by)."""
        if self.tables.item_cosines is not None:
            return self.tables.item_cosines[i]
        unit = self.served.item_unit
        return unit @ unit[i]

    def nearest_items(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``i``'s ``n`` nearest items and their cosines (itself left out), best first: from the
        precomputed lists when they are long enough."""
        best = self.tables.item_best
        if best is not None and n <= int(best.lengths[i]):
            return best.items[i, :n], best.scores[i, :n]
        approx = self.ann_similar(i, n, None, np.array([i], np.intp))
        got = approx(self.n_items - 1) if approx is not None else None
        if got is not None:
            return got
        cos = self.item_cosines(i).copy()
        cos[i] = -np.inf
        idx, val = top_k_row(cos, n)
        return idx, val

    def ann_personal(
        self, engine: str, u: int, row: sp.csr_matrix | None, k: int, mask: np.ndarray | None, exclude: np.ndarray
    ) -> Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None:
        """``ranking.top``'s ``approx`` for the engine's list of user ``u`` with history ``row`` (as
        ``scores``), or None when no index serves it: below ``ann_min_items``, an engine other than the
        served model, or a known user whose scores are a precomputed table row (no mat-vec to save)."""
        if self.ann is None or engine != "nn" or (row is None and self.tables.user_scores is not None):
            return None
        s, history = self.served, row if row is not None else self.history_row(u)

        def approx(total: int) -> tuple[np.ndarray, np.ndarray] | None:
            # Pooled only when called: a precomputed list, when it answers, needs no user vector.
            items = history_items(history)
            if u < 0 and not s.pools_history:  # scored by cosine to the history's mean unit embedding
                if not items.size:
                    return None
                q = s.item_unit[items].mean(axis=0)
                return self.ann.top(self.ann.similar, q, lambda c: s.item_unit[c] @ q, k, mask, exclude, total)
            vec = s.user_vector(u, items)

            def exact(c: np.ndarray) -> np.ndarray:
                return s.item_factors[c] @ vec + s.item_bias[c]

            return self.ann.top(self.ann.personal, np.append(vec, np.float32(1.0)), exact, k, mask, exclude, total)

        return approx

    def ann_similar(
        self, i: int, k: int, mask: np.ndarray | None, exclude: np.ndarray
    ) -> Callable[[int], tuple[np.ndarray, np.ndarray] | None] | None:
        """``ranking.top``'s ``approx`` for the items nearest item ``i`` (``item_cosines``), or None
        below ``ann_min_items`` or when the cosines are a precomputed table row."""
        if self.ann is None or self.tables.item_cosines is not None:
            return None
        unit, indexes = self.served.item_unit, self.ann
        return lambda total: indexes.top(indexes.similar, unit[i], lambda c: unit[c] @ unit[i], k, mask, exclude, total)

    def item_details(self, item_id: str) -> dict[str, Any] | None:
        return self.catalogue.details(item_id, self.item_index(item_id))

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
            "catalogue_items": len(self.catalogue.records),
            "genres": self.catalogue.genre_names,
            "engines": {name: self.engines.state(name) for name in self.engines.ready},
            "auto_engine": self.auto_engine,
            # the hybrid lists built in the background at load ("building": ranked per request meanwhile)
            "hybrid_lists": "off"
            if self.auto_engine != "hybrid"
            else ("ready" if self.hybrid_lists is not None else "building"),
            # what each engine does with what users did since training (``Recommender.online_updates``)
            "online_updates": {name: engine_class(name).online_updates for name in self.engines.ready},
            **({"ann": self.ann.info()} if self.ann is not None else {}),
        }


ANN_CACHE = "ann-cache"  # under the data directory: built indexes, by the hash of their vectors


class AnnIndexes:
    """The ANN indexes of one loaded model (built at load, or read from the cache): ``personal`` over ``[item_factors, item_bias]``
    (a user's score is ``[user_vec, 1]`` . that row), ``similar`` over the unit item embeddings."""

    def __init__(self, served: SavedEmbedding, settings: Settings):
        self.settings = settings
        params = (settings.ann_lists, settings.ann_probe, settings.data_dir / ANN_CACHE)
        self.personal = ann.cached_index(np.hstack([served.item_factors, served.item_bias[:, None]]), *params)
        self.similar = ann.cached_index(served.item_unit, *params)

    def top(
        self,
        index: ann.IvfIndex,
        query: np.ndarray,
        exact: Callable[[np.ndarray], np.ndarray],
        k: int,
        mask: np.ndarray | None,
        exclude: np.ndarray,
        total: int,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``ann.top`` with this runtime's over-fetch settings."""
        st = self.settings
        return ann.top(index, query, exact, k, mask, exclude, total, st.ann_overfetch, st.ann_max_candidates)

    def info(self) -> dict[str, Any]:
        st = self.settings
        return {
            "index": "faiss IVF-Flat",
            "source": "read from the cache" if self.personal.loaded and self.similar.loaded else "built at load",
            "cache_dir": str(self.settings.data_dir / ANN_CACHE),
            "min_items": st.ann_min_items,
            "lists": self.personal.n_lists,
            "probe": st.ann_probe,
            "build_seconds": round(self.personal.build_seconds + self.similar.build_seconds, 2),
            "memory_mb": round((self.personal.nbytes + self.similar.nbytes) / 2**20, 1),
        }
