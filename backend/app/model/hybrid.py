"""The hybrid engine: candidate sources, a feature store and a learned ranker, as one engine of the contract.

Fitting, on the positives and their timestamps:

1. each user with at least ``MIN_POSITIVES`` positives has the latest ``label_share`` of them held out
   (``later_slice``); the sources and the feature store are fitted on the earlier part only;
2. for a sample of those users, the sources' candidates (``sources.gather``) become a LightGBM
   ``lambdarank`` training set, labelled by the held-out positives: no label was ever in the data the
   sources or the features were fitted on. A share of the users is kept apart for the comparison with
   every single source (``validation_``); ``rankers`` rankers (by default five on a small log, fewer as
   the training set grows: ``ranker.members_for``), each early-stopped on its own random fifth of the
   others, are averaged (``ranker.train_rankers``);
3. the sources and the feature store are refitted on every positive: that is what serves.

Scoring a user: the union of the sources' candidates, ranked by the ranker; the other items follow,
ordered by the first source's score, so a filtered list is still complete.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import orjson
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.data.types import recency_of
from app.model.als import ALSRecommender
from app.model.base import Explanation, Recommender, csr_row, top_k, two_at_a_time
from app.model.ease import EASERecommender
from app.model.embedding import EmbeddingRecommender, sized_params
from app.model.embedding_training import users_per_batch
from app.model.feature_store import (
    CROSS_COLUMNS,
    ITEM_COLUMNS,
    USER_COLUMNS,
    FeatureStore,
    build_store,
    cross_features,
)
from app.model.itemknn import ItemKNNRecommender, binary
from app.model.popularity import PopularityRecommender
from app.model.ranker import Ranker, members_for, train_rankers
from app.model.sources import (
    SOURCE_NAMES,
    Candidates,
    GenrePopularRecommender,
    TrendingRecommender,
    fit_source,
    gather,
)

#: Users need this many positives to have a later slice held out for the ranker's labels.
MIN_POSITIVES = 3
#: Users scored per batch when the ranker's training set is built (bounds the sources' score matrices).
BATCH_ROWS = 256
#: The embedding model's fit on all positives runs beside the earlier slice's while a batch of the
#: multinomial loss holds at most this many users x items cells (the shop log's 566,500, ML-100K's
#: 24,599). Above it each fit's products keep both cores busy on their own, and two fits crowd each
#: other out: the 20M-event log's epochs (280 users x 27,154 items a batch) took 155 s side by side,
#: 47 to 70 s alone.
SIDE_BY_SIDE_CELLS = 2**20
#: Offset below every ranked candidate for the items no source proposed.
BELOW = 1000.0

#: Feature groups -> the reason they stand for (``explain``); a feature's group is its name's prefix.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "liked": ("itemknn_", "ease_"),
    "similar_users": ("nn_", "als_"),
    "trending": ("trending_", "item_decayed", "item_days_since"),
    "genre_match": ("genre_",),
    "popularity": ("popular_", "item_count", "item_weight", "n_sources"),
    "rating": ("item_avg_rating",),
}
#: The groups in code order (``reason_codes``).
REASON_NAMES = tuple(REASON_GROUPS)


def reason_order(contributions: np.ndarray) -> np.ndarray:
    """Along the last axis (one value per reason group): the groups that raised the score, strongest
    first (equal ones in group order), -1 padded: what a reason list is made of."""
    order = np.argsort(-contributions, axis=-1, kind="stable")
    return np.where(np.take_along_axis(contributions, order, axis=-1) > 0, order, -1)


@functools.cache
def _group_matrix(feature_names: tuple[str, ...]) -> np.ndarray:
    """Features x ``REASON_GROUPS``, 1 where a group sums the feature (what ``Ranker.contributions`` takes)."""
    out = np.zeros((len(feature_names), len(REASON_GROUPS)))
    for g, prefixes in enumerate(REASON_GROUPS.values()):
        out[[j for j, f in enumerate(feature_names) if f.startswith(prefixes)], g] = 1.0
    return out


def later_slice(
    matrix: sp.csr_matrix, timestamps: sp.csr_matrix, share: float, min_positives: int = MIN_POSITIVES
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(earlier, later) parts of every row: rows with at least ``min_positives`` entries put their latest
    ``max(1, floor(share * n))`` entries (by timestamp; equal timestamps by item index) in the later part."""
    m = sp.csr_matrix(matrix)
    t = sp.csr_matrix(timestamps)
    n_row = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), n_row)
    order = np.lexsort((m.indices, t.data, rows))  # by row, then time, then item
    place_in_row = np.empty(order.size, np.int64)
    place_in_row[order] = np.arange(order.size) - m.indptr[rows[order]]
    n_late = np.where(n_row >= min_positives, np.maximum(1, np.floor(share * n_row)), 0).astype(np.int64)
    late = place_in_row >= (n_row - n_late)[rows]

    def part(keep: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype)
        out.sort_indices()
        return out

    early_ts = sp.csr_matrix((t.data[~late], (rows[~late], m.indices[~late])), shape=m.shape, dtype=np.int64)
    early_ts.sort_indices()
    return (part(~late), early_ts), part(late)


def _labels(items: np.ndarray, truth: sp.csr_matrix) -> tuple[list[np.ndarray], np.ndarray]:
    """(per row, whether each of its items (-1 = none, left out) is among the row's ``truth`` items; the
    rows with at least one such item)."""
    labels = [
        np.isin(row[row >= 0], truth.indices[truth.indptr[r] : truth.indptr[r + 1]]) for r, row in enumerate(items)
    ]
    return labels, np.array([label.any() for label in labels], dtype=bool)


def feature_names(sources: Sequence[str]) -> list[str]:
    """The ranker's columns: every source's score and rank, how many sources proposed the item, the
    user's and the item's aggregates, and the user x item genre features."""
    names = [f"{s}_{kind}" for s in sources for kind in ("score", "rank")]
    return [*names, "n_sources", *USER_COLUMNS, *ITEM_COLUMNS, *CROSS_COLUMNS]


class HybridRecommender:
    """Candidates from several sources, ordered by a LightGBM ranker over their scores and the feature store."""

    name: ClassVar[str] = "hybrid"
    max_items: ClassVar[int | None] = None
    uses_timestamps: ClassVar[bool] = True  # fit() takes ``timestamps`` (Dataset.timestamps) for its slices
    online_updates: ClassVar[str] = (
        "scores the updated history row with every source; the user's count features follow it at once"
    )

    def __init__(
        self,
        per_source: int = 50,
        label_share: float = 0.1,
        half_life_days: float = 30.0,
        max_ranker_users: int = 20_000,
        validation_share: float = 0.2,
        ease_max_items: int = 6_000,
        rankers: int | None = None,
        seed: int = 42,
        nn: Mapping[str, Any] | None = None,
        itemknn: Mapping[str, Any] | None = None,
        als: Mapping[str, Any] | None = None,
        ease: Mapping[str, Any] | None = None,
    ):
        if per_source < 1:
            raise ValueError("per_source must be >= 1")
        if not 0.0 < label_share < 1.0 or not 0.0 < validation_share < 1.0:
            raise ValueError("label_share and validation_share must be between 0 and 1")
        if rankers is not None and rankers < 1:
            raise ValueError("rankers must be >= 1 (or None: as many as the training set's size allows)")
        if half_life_days <= 0 or max_ranker_users < 10:
            raise ValueError("half_life_days must be positive and max_ranker_users at least 10")
        self.per_source = int(per_source)
        self.label_share = float(label_share)
        self.half_life_days = float(half_life_days)
        self.max_ranker_users = int(max_ranker_users)
        self.validation_share = float(validation_share)
        self.ease_max_items = int(ease_max_items)
        self.rankers = None if rankers is None else int(rankers)  # None: ranker.members_for the candidates
        self.seed = int(seed)
        self.source_params: dict[str, dict[str, Any]] = {
            "nn": dict(nn or {}),
            "itemknn": dict(itemknn or {"neighbours": 50}),
            "als": dict(
                als or {"factors": 64, "regularization": 1.0, "alpha": 4.0, "seed": self.seed, "num_threads": 0}
            ),
            "ease": dict(ease or {"l2": 400.0}),
        }
        self.sources_: dict[str, Recommender] = {}
        self.store_: FeatureStore | None = None
        self.ranker_: Ranker | None = None
        #: Held-out users' top-10 by the hybrid and by each source, and their later positives (fit only).
        self.validation_: dict[str, Any] = {}
        #: The features of the last one-user ``score`` (key, features, candidates): the service explains
        #: the list it just scored, and recomputing every source's scores for that doubled a request.
        self._last: tuple | None = None

    def params(self) -> dict[str, Any]:
        return {
            "per_source": self.per_source,
            "label_share": self.label_share,
            "half_life_days": self.half_life_days,
            "max_ranker_users": self.max_ranker_users,
            "validation_share": self.validation_share,
            "ease_max_items": self.ease_max_items,
            "rankers": self.rankers,
            "seed": self.seed,
            **{name: dict(p) for name, p in self.source_params.items()},
        }

    # ------------------------------------------------------------------ fitting
    def source_names(self, n_items: int) -> list[str]:
        return [s for s in SOURCE_NAMES if s != "ease" or n_items <= self.ease_max_items]

    def _new_sources(
        self, n_users: int, n_items: int, n_positives: int, nn: Recommender | None = None
    ) -> dict[str, Recommender]:
        made: dict[str, Recommender] = {}
        for name in self.source_names(n_items):
            if name == "nn":
                made[name] = nn or EmbeddingRecommender(
                    **sized_params(n_users, n_items, {"seed": self.seed, **self.source_params["nn"]}, n_positives)
                )
            elif name == "itemknn":
                made[name] = ItemKNNRecommender(**self.source_params["itemknn"])
            elif name == "als":
                made[name] = ALSRecommender(**self.source_params["als"])
            elif name == "ease":
                made[name] = EASERecommender(**self.source_params["ease"])
            elif name == "popular":
                made[name] = PopularityRecommender()
            elif name == "trending":
                made[name] = TrendingRecommender(self.half_life_days)
            else:
                made[name] = GenrePopularRecommender()
        return made

    def fit_sources(
        self,
        matrix: sp.csr_matrix,
        timestamps: sp.csr_matrix,
        features: ItemFeatures | None,
        nn: Recommender | None = None,
        on_stage: Callable[[str], None] = lambda s: None,
        label: str = "",
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> dict[str, Recommender]:
        """Every source, fitted on ``matrix`` (``nn``: an embedding model already fitted on it; else the
        one fitted here reports its epochs to ``on_epoch``)."""
        sources = self._new_sources(*matrix.shape, matrix.nnz, nn=nn)
        recency = recency_of(timestamps)
        # the embedding model last: while a fit beside this one (``fit``) starts TensorFlow (its import
        # and compilation hold one core), this one does the NumPy sources' work on the other
        for name, engine in sorted(sources.items(), key=lambda source: source[0] == "nn"):
            if name == "nn" and nn is not None:
                continue  # already fitted by the caller on this matrix
            on_stage(f"{label}: fitting source {name}")
            fit_source(name, engine, matrix, timestamps, features, recency, on_epoch if name == "nn" else None)
        return sources

    def fit(
        self,
        matrix: sp.csr_matrix,
        features: ItemFeatures | None = None,
        *,
        timestamps: sp.csr_matrix | None = None,
        nn: Recommender | Callable[[], Recommender] | None = None,
        on_stage: Callable[[str], None] | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        on_earlier: Callable[[Mapping[str, Recommender], sp.csr_matrix, sp.csr_matrix], None] | None = None,
    ) -> HybridRecommender:
        """Fit on users x items weights and their timestamps (``Dataset.timestamps()``; without them every
        positive counts as equally old, and the later slice is by item index).

        ``nn``: the embedding model already fitted on all of ``matrix``, so it is not trained again; or a
        function that fits it (the training CLI's shipped fit); or None, to fit it here. The one for the
        earlier slice always is fitted here, and reports its epochs to ``on_epoch``. A fit on all of
        ``matrix`` runs in a thread beside it while their batches are small (``SIDE_BY_SIDE_CELLS``): two
        TensorFlow fits at once keep two cores busier than one after the other (a fit leaves about a
        quarter of them idle), and each model is the same either way.
        ``on_stage(text)`` reports progress. ``on_earlier(sources, earlier, later)`` is
        called once the sources are fitted on the earlier slice: none of them saw the later one, so the
        training CLI scores the embedding model there instead of fitting a model only to measure it."""
        say = on_stage or (lambda s: None)
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sort_indices()
        if m.nnz == 0:
            raise ValueError("cannot fit the hybrid engine on a matrix without positives")
        if timestamps is None:
            timestamps = sp.csr_matrix((np.zeros(m.nnz, np.int64), m.indices, m.indptr), shape=m.shape)
        t = sp.csr_matrix(timestamps)
        (early, early_ts), late = later_slice(m, t, self.label_share)
        label_users = np.flatnonzero(np.diff(late.indptr))
        if label_users.size < 10:
            raise ValueError(
                f"the hybrid engine needs at least 10 users with {MIN_POSITIVES} or more positives; this data has "
                f"{label_users.size}"
            )
        rng = np.random.default_rng(self.seed)
        if label_users.size > self.max_ranker_users:
            label_users = np.sort(rng.choice(label_users, self.max_ranker_users, replace=False))
        is_val = rng.random(label_users.size) < self.validation_share
        train_users, val_users = label_users[~is_val], label_users[is_val]

        if nn is None:
            full_nn = self._new_sources(*m.shape, m.nnz)["nn"]
            nn = functools.partial(fit_source, "nn", full_nn, m, t, features, recency_of(t))
        if callable(nn) and not self._side_by_side(*m.shape, m.nnz):
            nn = nn()  # large batches: the fits one after the other
        with ThreadPoolExecutor(1, thread_name_prefix="hybrid-nn") as pool:
            shipped = pool.submit(nn) if callable(nn) else None
            sources = self.fit_sources(early, early_ts, features, None, say, "earlier slice", on_epoch)
            # awaited here, before the candidates and the ranker, which need memory and cores of their own
            # (an error of the main thread above still waits for it: the caller may ship that model alone)
            nn = shipped.result() if shipped is not None else nn
        if on_earlier is not None:
            on_earlier(sources, early, late)
        store = build_store(early, early_ts, features, self.half_life_days)
        say(f"ranker: candidates for {label_users.size} users")
        names = list(sources)
        x, y, g = self._training_frame(sources, store, early, late, train_users)
        if len(g) < 10 or not val_users.size:
            raise ValueError("too few users' later positives are among the candidates; the hybrid engine cannot learn")
        members = self.rankers or members_for(x.shape[0])
        say(
            f"ranker: {members} LightGBM lambdarank ranker(s) on {x.shape[0]:,} candidates of {len(g)} users "
            f"({val_users.size} more held out for validation)"
        )
        base = f"{names[0]}_score"
        self.ranker_ = train_rankers(x, y, g, feature_names(names), base, members=members, seed=self.seed)
        self.sources_, self.store_ = sources, store
        self.validation_ = self._validation(early, late, val_users)

        self.sources_ = self.fit_sources(m, t, features, nn, say, "all positives")
        self.store_ = build_store(m, t, features, self.half_life_days)
        return self

    def _side_by_side(self, n_users: int, n_items: int, n_positives: int) -> bool:
        """Whether the two embedding fits run at once (``SIDE_BY_SIDE_CELLS``)."""
        hp = sized_params(n_users, n_items, {"seed": self.seed, **self.source_params["nn"]}, n_positives)
        if hp["loss"] != "multinomial":  # batches of positives and their sampled items: small
            return True
        return users_per_batch(hp["batch_size"], n_users, n_positives) * n_items <= SIDE_BY_SIDE_CELLS

    def _training_frame(
        self,
        sources: Mapping[str, Recommender],
        store: FeatureStore,
        early: sp.csr_matrix,
        late: sp.csr_matrix,
        users: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Features, labels and group sizes of the users' candidates; users whose later positives none of
        the candidates holds are left out (they teach a ranking nothing), before their features are built."""

        def block(lo: int) -> tuple[np.ndarray, list[np.ndarray], Candidates] | None:
            batch = users[lo : lo + BATCH_ROWS]
            hist = early[batch]
            cands = gather(sources, batch, hist, self.per_source)
            labels, taught = _labels(cands.items, late[batch])
            if not taught.any():
                return None
            kept = cands.rows(taught)
            x = self._features(sources, store, batch[taught], hist[taught], kept)
            return x, [labels[i] for i in np.flatnonzero(taught)], kept

        xs, ys, groups = [], [], []
        for done in two_at_a_time(block, range(0, users.size, BATCH_ROWS)):
            if done is None:
                continue
            x, labels, kept = done
            for r, label in enumerate(labels):
                xs.append(x[r][kept.items[r] >= 0])
                ys.append(label.astype(np.float32))
                groups.append(label.size)
        if not groups:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.float32), []
        return np.concatenate(xs), np.concatenate(ys), groups

    def _frame(
        self,
        sources: Mapping[str, Recommender],
        store: FeatureStore,
        users: np.ndarray,
        history: sp.csr_matrix,
        items: np.ndarray | None,
    ) -> tuple[np.ndarray, Candidates]:
        """(n_rows x n_candidates x n_features, the candidates) for a batch: the sources' union, or the
        given ``items`` (n_rows x n, -1 = none) with the same features."""
        cands = gather(sources, users, history, self.per_source, items=items)
        return self._features(sources, store, users, history, cands), cands

    @staticmethod
    def _features(
        sources: Mapping[str, Recommender],
        store: FeatureStore,
        users: np.ndarray,
        history: sp.csr_matrix,
        cands: Candidates,
    ) -> np.ndarray:
        """n_rows x n_candidates x n_features: each source's score and rank, the user's and the item's
        stored features, and their crosses."""
        user_f, shares = store.user_rows(users, history)
        items = cands.items
        n_rows, width = items.shape
        safe = np.maximum(items, 0)
        parts = []
        for name in sources:
            parts.append(cands.scores[name][..., None])
            parts.append(cands.ranks[name][..., None].astype(np.float32))
        parts.append(cands.n_sources[..., None].astype(np.float32))
        parts.append(np.broadcast_to(user_f[:, None, :], (n_rows, width, user_f.shape[1])))
        parts.append(store.item[safe])
        parts.append(cross_features(shares, store.item_genres, items))
        return np.concatenate(parts, axis=2).astype(np.float32)

    def _validation(self, early: sp.csr_matrix, late: sp.csr_matrix, users: np.ndarray) -> dict[str, Any]:
        """The held-out users' top 10 by the hybrid and by each source alone (their earlier items excluded),
        and their later positives: the training CLI scores them (``app.eval`` metrics) to choose ``auto``."""
        hist = early[users]
        seen = binary(hist)
        truth = late[users].copy()
        truth.data[:] = 1.0
        alone: dict[str, list[np.ndarray]] = {}
        ranked = {"hybrid": top_k(self._score(users, hist, truth, alone), 10, exclude=seen)[0]}
        ranked.update({name: np.concatenate(parts) for name, parts in alone.items()})
        return {"users": users, "ranked": ranked, "truth": truth}

    # ------------------------------------------------------------------ scoring
    def _check(self) -> tuple[FeatureStore, Ranker]:
        if self.store_ is None or self.ranker_ is None:
            raise RuntimeError("fit the recommender before scoring")
        return self.store_, self.ranker_

    @staticmethod
    def _key(user: int, h: sp.csr_matrix) -> tuple:
        return (int(user), h.indices.tobytes(), h.data.tobytes())

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self._score(users, history)

    def _score(
        self,
        users: np.ndarray,
        history: sp.csr_matrix,
        truth: sp.csr_matrix | None = None,
        alone: dict[str, list[np.ndarray]] | None = None,
    ) -> np.ndarray:
        """``score``; with ``truth`` (a CSR row of items per row), the ranker runs only for the rows with a
        truth item among their candidates, and the other rows' candidates all score 0: still above every
        item no source proposed, and their order cannot change a metric that counts hits (NDCG,
        recall). On a sparse log that leaves out most of a validation's predictions. ``alone``: filled
        with each source's own top 10 per batch of rows (history excluded), from the scores the
        candidates were drawn from (the validation's comparison, without scoring every source again)."""
        store, ranker = self._check()
        users = np.asarray(users, dtype=np.int64)
        h = sp.csr_matrix(history)
        n_items = h.shape[1]
        threads = 1 if h.shape[0] == 1 else (os.cpu_count() or 1)  # a request: one core
        out = np.empty((h.shape[0], n_items), np.float32)
        predicting = threading.Lock()  # one booster's predictions one at a time (LightGBM's own threads run them)

        def block(lo: int) -> dict[str, np.ndarray]:
            """Rows lo.. of ``out``; each source's own top 10 of them when ``alone`` asks for it."""
            hi = min(lo + BATCH_ROWS, h.shape[0])
            hist, batch = h[lo:hi], users[lo:hi]
            cands = gather(self.sources_, batch, hist, self.per_source)
            tops = {}
            if alone is not None:
                seen = binary(hist)
                tops = {name: top_k(scores, 10, exclude=seen)[0] for name, scores in cands.full.items()}
            items = cands.items
            first = cands.first.astype(np.float64)
            low, high = first.min(axis=1, keepdims=True), first.max(axis=1, keepdims=True)
            out[lo:hi] = (first - low) / np.maximum(high - low, 1e-12) - BELOW - 1.0  # in [-BELOW-1, -BELOW]
            ranked = np.arange(hi - lo)  # the rows the ranker runs for
            if truth is not None:
                hit = _labels(items, truth[lo:hi])[1]
                rest = (items >= 0) & ~hit[:, None]
                out[lo:hi][np.nonzero(rest)[0], items[rest]] = 0.0
                ranked = np.flatnonzero(hit)
                if not ranked.size:
                    return tops
                batch, hist, cands = batch[ranked], hist[ranked], cands.rows(ranked)
            x = self._features(self.sources_, store, batch, hist, cands)
            keep = cands.items >= 0
            rows = ranked[np.repeat(np.arange(keep.shape[0]), keep.sum(axis=1))]
            with predicting:
                out[lo:hi][rows, cands.items[keep]] = ranker.predict(x[keep], threads)
            if h.shape[0] == 1:  # a request's one user: ``explain`` of its list reuses the features
                self._last = (self._key(users[0], hist), x[0], items[0])
            return tops

        done = list(two_at_a_time(block, range(0, h.shape[0], BATCH_ROWS)))  # a request: no thread
        if alone is not None:
            for name in self.sources_:
                alone[name] = [tops[name] for tops in done]
        return out

    def explain(self, user: int, history: sp.csr_matrix, items: np.ndarray) -> Explanation:
        """The ranker's strongest positive feature groups per item (LightGBM's per-feature contributions,
        summed by ``REASON_GROUPS``), and item-kNN's similarities of the history items to name the
        item behind "because you liked"."""
        store, ranker = self._check()
        items = np.asarray(items, dtype=np.int64)
        h = csr_row(sp.csr_matrix(history), 0) if history.shape[0] != 1 else sp.csr_matrix(history)
        if not items.size:
            return Explanation(items)
        last = self._last
        if last is not None and last[0] == self._key(user, h):
            where = {int(i): n for n, i in enumerate(last[2].tolist()) if i >= 0}
            rows = [where.get(int(i), -1) for i in items.tolist()]
            x = last[1][rows][None] if min(rows) >= 0 else None
        else:
            x = None
        if x is None:  # not the list just scored, or items no source proposed
            x, _ = self._frame(self.sources_, store, np.array([user]), h, items[None, :])
        contrib = self._group_contributions(ranker, x[0])
        groups = {group: contrib[:, g] for g, group in enumerate(REASON_GROUPS)}
        knn = self.sources_.get("itemknn")
        base = knn.explain(user, h, items) if knn is not None else Explanation(items)
        return Explanation(items, base.history, base.contributions, groups)

    def reason_codes(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``explain`` for many users' lists at once, compactly: (codes, liked). ``items`` is n_rows x n
        (-1 = none); ``codes[r, j]`` lists the ``REASON_GROUPS`` (by index) that raised item j's score,
        strongest first, -1 padded; ``liked[r, j]`` the history item most similar to it by item-kNN
        (-1 when none). Precomputed lists keep these instead of texts (a few bytes an entry)."""
        store, ranker = self._check()
        users = np.asarray(users, dtype=np.int64)
        h = sp.csr_matrix(history)
        n_rows, width = items.shape
        codes = np.full((n_rows, width, len(REASON_GROUPS)), -1, np.int8)
        liked = np.full((n_rows, width), -1, np.int32)
        knn = self.sources_.get("itemknn")
        for lo in range(0, n_rows, BATCH_ROWS):
            hi = min(lo + BATCH_ROWS, n_rows)
            x, _ = self._frame(self.sources_, store, users[lo:hi], h[lo:hi], items[lo:hi])
            keep = items[lo:hi] >= 0
            contrib = np.zeros((hi - lo, width, len(REASON_GROUPS)), np.float32)
            contrib[keep] = self._group_contributions(ranker, x[keep], os.cpu_count() or 1)  # at load: every core
            codes[lo:hi] = np.where(keep[..., None], reason_order(contrib), -1).astype(np.int8)
            if knn is not None:
                liked[lo:hi] = knn.strongest_history_rows(h[lo:hi], items[lo:hi])
        return codes, liked

    @staticmethod
    def _group_contributions(ranker: Ranker, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Rows x ``REASON_GROUPS``: the ranker's per-feature contributions summed by group."""
        return ranker.contributions(x, threads, _group_matrix(tuple(ranker.feature_names)))

    # ------------------------------------------------------------------ saving
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON-able metadata) that ``restore`` rebuilds the fitted engine from, with the embedding
        model (saved on its own) and the history: the feature store and trending scores are kept, the
        ALS item factors too (a refit would cost minutes on large logs), the cheap sources are refitted."""
        store, ranker = self._check()
        arrays = {f"store_{k}": v for k, v in store.arrays().items()}
        arrays["trending_scores"] = self.sources_["trending"].item_scores_
        arrays["als_item_factors"] = np.asarray(self.sources_["als"].model_.item_factors, np.float32)
        meta = {
            "params": self.params(),
            "sources": list(self.sources_),
            "feature_names": ranker.feature_names,
            "best_iterations": ranker.best_iterations,
            "base": ranker.base,
        }
        return arrays, {"meta": meta, "ranker": orjson.dumps(ranker.model_texts).decode()}

    @classmethod
    def restore(
        cls,
        arrays: Mapping[str, np.ndarray],
        saved: Mapping[str, Any],
        nn: Recommender,
        history: sp.csr_matrix,
    ) -> HybridRecommender:
        """The fitted engine from ``state()``: ``nn`` is the served embedding model, ``history`` every positive
        the model was trained on (the cheap sources are refitted on it, as at the end of training)."""
        meta = saved["meta"]
        p = dict(meta["params"])
        engine = cls(**p)
        store = FeatureStore.from_arrays({k[len("store_") :]: v for k, v in arrays.items() if k.startswith("store_")})
        features = ItemFeatures(genres=sp.csr_matrix(store.item_genres) if store.item_genres.shape[1] else None)
        m = sp.csr_matrix(history, dtype=np.float32)
        sources = engine._new_sources(*m.shape, m.nnz, nn=nn)
        if list(sources) != list(meta["sources"]):
            raise ValueError(f"saved hybrid sources {meta['sources']} do not match {list(sources)}")
        for name, src in sources.items():
            if name == "trending":
                src.item_scores_ = np.asarray(arrays["trending_scores"], np.float32)
            elif name == "als":
                src.restore(np.asarray(arrays["als_item_factors"], np.float32))
            elif name != "nn":
                src.fit(m, features)
        engine.sources_, engine.store_ = sources, store
        engine.ranker_ = Ranker(
            list(orjson.loads(saved["ranker"])),
            list(meta["feature_names"]),
            [int(n) for n in meta["best_iterations"]],
            str(meta["base"]),
        )
        return engine
