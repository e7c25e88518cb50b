"""The online history: what a user did since the model's training data ended, joined to their serving history at once.

A like, a watch or a rating posted a second ago changes the user's next list without retraining:
positives (by the training rule, ``PositiveRule``) are added to the history row the engines score,
every item of a seen event type is excluded, and negatives (dislike, skip) are excluded for good and
push their nearest neighbours down (``penalise``). The rows live in the database (events and active
engagements newer than what the model was trained through, ``data_summary.online_through``), so they
survive restarts and every worker and replica sees them; each worker keeps them per user in a bounded
LRU cache that its own writes and a poll of the database (``users_changed_since``) invalidate.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.data.aggregate import PositiveRule
from app.store.online_history import Activity

log = logging.getLogger(__name__)

#: Event types whose items are pushed down with their neighbours (they are excluded as seen anyway).
NEGATIVE_EVENTS = frozenset({"dislike", "skip"})


@dataclass(frozen=True)
class OnlineUser:
    """One user's online history by item id (newest first), independent of any model."""

    positives: dict[str, float] = field(default_factory=dict)  # item -> summed weight, newest first
    seen: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    events: int = 0
    #: Per runtime version: the same history in that model's item indices (filled on first use).
    views: dict[str, OnlineView] = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.events


EMPTY = OnlineUser()


@dataclass(frozen=True)
class OnlineView:
    """An ``OnlineUser`` in one model's item indices; items the model does not know are left out."""

    positives: np.ndarray  # intp, newest first
    weights: np.ndarray  # float32, aligned with positives
    seen: np.ndarray  # intp, sorted, unique
    negatives: np.ndarray  # intp, newest first
    demoted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))  # shown often, never engaged
    #: What a request would otherwise rebuild each time, per user index (``strategies`` fills it).
    memo: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)

    def row(self, n_items: int) -> sp.csr_matrix:
        """The online positives as a one-row history (weights by the training rule)."""
        order = np.argsort(self.positives, kind="stable")
        return sp.csr_matrix(
            (self.weights[order], self.positives[order], np.array([0, self.positives.size])), shape=(1, n_items)
        )


def summarise(
    activity: Iterable[Activity], rule: PositiveRule, seen_events: Collection[str], negative_events: Collection[str]
) -> OnlineUser:
    """Fold a user's activity (newest first) into positives, seen items and negatives."""
    positives: dict[str, float] = {}
    seen: dict[str, None] = {}
    negatives: dict[str, None] = {}
    n = 0
    for a in activity:
        n += 1
        w = rule.weight(a.event, a.rating, a.weight)
        if w > 0:
            positives[a.item_id] = positives.get(a.item_id, 0.0) + w
        if a.event in seen_events or w > 0:
            seen[a.item_id] = None
        if a.event in negative_events:
            negatives[a.item_id] = None
    return OnlineUser(positives, tuple(seen), tuple(negatives), n)


def add_rows(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """Two one-row histories summed (sorted, unique indices, as engines expect)."""
    out = sp.csr_matrix(a + b, dtype=np.float32)
    out.sort_indices()
    return out


def neighbour_push(
    nearest: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    negatives: np.ndarray,
    n_neighbours: int,
    min_cosine: float,
    max_negatives: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """(items, cosine) of the items to push down for a user: the ``n_neighbours`` nearest items of each of
    the newest ``max_negatives`` negatives with a cosine >= ``min_cosine``, the nearest negative
    counting for an item reached from several. ``nearest(i, n)`` gives item i's n nearest items."""
    best: dict[int, float] = {}
    for i in negatives[:max_negatives].tolist():
        items, cos = nearest(i, n_neighbours)
        for j, c in zip(items.tolist(), cos.tolist(), strict=True):
            if c >= min_cosine and c > best.get(j, 0.0):
                best[j] = c
    return np.fromiter(best, np.intp, len(best)), np.fromiter(best.values(), np.float32, len(best))


def penalise(
    scores: np.ndarray,
    push_items: np.ndarray,
    push_cosines: np.ndarray,
    penalty: float,
    demoted: np.ndarray | None = None,
) -> np.ndarray:
    """Scores with ``push_items`` lowered by ``penalty`` x their cosine x the spread (std) of the user's
    finite scores, and ``demoted`` items put below every other finite score. A copy when anything changes."""
    if not push_items.size and (demoted is None or not demoted.size):
        return scores
    finite = scores[np.isfinite(scores)]
    if not finite.size:
        return scores
    out = np.array(scores, dtype=np.float32)
    if push_items.size and penalty > 0:
        out[push_items] -= (penalty * float(finite.std())) * push_cosines
    if demoted is not None and demoted.size:
        out[demoted] -= float(finite.max() - finite.min()) + 1.0
    return out


class OnlineHistories:
    """Every user's online history as this worker knows it: a bounded LRU cache over the store.

    ``cached`` answers from memory (None when the user must be loaded); ``load`` reads the store (a
    blocking call: run it off the event loop); ``invalidate`` drops users whose rows changed, from this
    worker's writes at once and from other workers' through ``poll``."""

    def __init__(
        self,
        read: Callable[..., list[Activity]],
        rule: PositiveRule,
        *,
        seen_events: Collection[str],
        negative_events: Collection[str] = NEGATIVE_EVENTS,
        max_users: int = 100_000,
        max_events: int = 5_000,
        demote_after_shown: int = 0,
        demote_window_days: float = 7.0,
    ):
        self._read = read
        self.rule = rule
        self.seen_events = frozenset(seen_events)
        self.negative_events = frozenset(negative_events)
        self.max_users = max(1, int(max_users))
        self.max_events = int(max_events)
        self._cache: OrderedDict[str, OnlineUser] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by every invalidation
        self._dirty: OrderedDict[str, int] = OrderedDict()  # user -> epoch of their last invalidation
        self.cutoff: tuple[int, int] = (0, 0)  # (events id, engagements id) the model was trained through
        self.demote_after = int(demote_after_shown)
        self.demote_window = float(demote_window_days) * 86400.0
        self._shown: OrderedDict[str, deque[tuple[float, tuple[int, ...]]]] = OrderedDict()
        self._shown_version: str | None = None

    # ----- cache
    def use_cutoff(self, cutoff: tuple[int, int]) -> None:
        """The served model changed what it was trained through: every cached history is stale."""
        if cutoff != self.cutoff:
            with self._lock:
                self.cutoff = cutoff
                self._cache.clear()
                self._epoch += 1

    def cached(self, user_id: str) -> OnlineUser | None:
        # No lock on this hot path: single OrderedDict operations are atomic under the GIL, and a user
        # evicted between the two (another thread's load) only loses the recency refresh.
        entry = self._cache.get(user_id)
        if entry is not None:
            try:
                self._cache.move_to_end(user_id)
            except KeyError:
                pass
        return entry

    def load(self, user_id: str) -> OnlineUser:
        """Read the user's history from the store and cache it (unless it changed while being read)."""
        epoch, cutoff = self._epoch, self.cutoff
        activity = self._read(user_id, after_event_id=cutoff[0], after_engagement_id=cutoff[1], limit=self.max_events)
        entry = summarise(activity, self.rule, self.seen_events, self.negative_events) if activity else EMPTY
        with self._lock:
            if self._dirty.get(user_id, -1) <= epoch and self.cutoff == cutoff:
                self._cache[user_id] = entry
                self._cache.move_to_end(user_id)
                while len(self._cache) > self.max_users:
                    self._cache.popitem(last=False)
        return entry

    def invalidate(self, user_ids: Iterable[str]) -> None:
        with self._lock:
            self._epoch += 1
            for u in user_ids:
                self._cache.pop(u, None)
                self._dirty[u] = self._epoch
                self._dirty.move_to_end(u)
            while len(self._dirty) > self.max_users:
                self._dirty.popitem(last=False)

    def __len__(self) -> int:
        return len(self._cache)

    # ----- shown without engagement (optional demotion, counted by this worker)
    def record_shown(self, user_id: str, version: str, items: np.ndarray) -> None:
        if not self.demote_after:
            return
        now = time.time()
        with self._lock:
            if version != self._shown_version:  # indices of another model
                self._shown.clear()
                self._shown_version = version
            shown = self._shown.setdefault(user_id, deque())
            self._shown.move_to_end(user_id)
            shown.append((now, tuple(items.tolist())))
            while shown and (shown[0][0] < now - self.demote_window or len(shown) > 4 * self.demote_after):
                shown.popleft()
            while len(self._shown) > self.max_users:
                self._shown.popitem(last=False)

    def _demoted(self, user_id: str, version: str, engaged: np.ndarray) -> np.ndarray:
        if not self.demote_after or version != self._shown_version:
            return np.zeros(0, np.intp)
        now = time.time()
        with self._lock:
            lists = [items for ts, items in self._shown.get(user_id, ()) if ts >= now - self.demote_window]
        if len(lists) < self.demote_after:
            return np.zeros(0, np.intp)
        counts = np.bincount(np.concatenate([np.asarray(x, np.intp) for x in lists]))
        often = np.flatnonzero(counts >= self.demote_after)
        return often[~np.isin(often, engaged)]

    # ----- one model's view
    def view(
        self, user_id: str, entry: OnlineUser, version: str, index: Callable[[list[str]], np.ndarray]
    ) -> OnlineView | None:
        """The entry in the served model's item indices (cached on the entry per model version); None when
        the user did nothing online the model can use and nothing is demoted."""
        if entry.empty and not self.demote_after:
            return None
        if entry.empty:
            demoted = self._demoted(user_id, version, np.zeros(0, np.intp))
            if not demoted.size:
                return None
            z = np.zeros(0, np.intp)
            return OnlineView(z, np.zeros(0, np.float32), z, z, demoted)
        v = entry.views.get(version)
        if v is None:
            pos = index(list(entry.positives))
            w = np.fromiter(entry.positives.values(), np.float32, len(entry.positives))
            seen = index(list(entry.seen))
            neg = index(list(entry.negatives))
            v = OnlineView(
                pos[pos >= 0].astype(np.intp),
                w[pos >= 0],
                np.unique(seen[seen >= 0]).astype(np.intp),
                neg[neg >= 0].astype(np.intp),
            )
            entry.views[version] = v
        if self.demote_after:
            demoted = self._demoted(user_id, version, v.seen)
            if demoted.size:
                return OnlineView(v.positives, v.weights, v.seen, v.negatives, demoted)
        return v


#: How far back each poll looks before its own start: a row committed a little after it was received
#: (a slow transaction) is still seen by the next poll.
POLL_OVERLAP_SECONDS = 2.0


async def follow(histories: OnlineHistories, changed: Callable[[float], set[str]], every: float) -> None:
    """Forever: every ``every`` seconds, drop the cached histories of users with rows received since the
    last poll (other workers' and replicas' writes); a failed poll is retried at the next one."""
    since = time.time() - POLL_OVERLAP_SECONDS
    while True:
        await asyncio.sleep(every)
        started = time.time()
        try:
            users = await asyncio.to_thread(changed, since)
        except Exception as exc:  # a database hiccup must not end the follower
            log.warning("online history poll failed: %s", exc)
            continue
        if users:
            histories.invalidate(users)
        since = started - POLL_OVERLAP_SECONDS
