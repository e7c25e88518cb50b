"""Online metrics from the logs, as pure functions over plain records (the store does the querying).

- PaC (Precision at Curation): for each shown list, the distinct top-k items the user engaged with
  *through that list* (engagements carrying its ``recset_id``) within ``window`` seconds after it was
  shown, divided by k (so a list cut short by filters counts its missing slots as misses).
  ``pac_mean`` averages that per list; ``pac_micro`` is total hits over total recommended (the items
  actually shown in the top k). Lists with no items are left out and counted in ``empty_lists``.
- Replay: for each shown list, everything the user did afterwards within the window (positive online
  events and positive engagements on any list, plus engagements with the list itself): realised
  Precision@K (hits / items in the top k), HitRate@K (share of lists with a hit) and a CTR proxy
  (share of lists with at least one positive engagement on an item of the list within the window).
- Summary: traffic, latency percentiles per endpoint, catalogue coverage and fallback rate.

The window is closed: an action at exactly ``ts + window`` counts, one before ``ts`` does not.
Engagements default to the server's clock; a client sending its own ``ts`` must keep it in sync.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

import numpy as np

UNKNOWN = "unknown"  # group name for a missing engine / model version


class ImpressionRecord(NamedTuple):
    recset_id: str
    user_id: str | None
    endpoint: str
    engine: str
    model_version: str | None
    item_ids: tuple[str, ...]
    platform: str | None
    is_fallback: bool
    latency_ms: float | None
    ts: float


class EngagementRecord(NamedTuple):
    recset_id: str
    user_id: str
    item_id: str
    action_type: str
    ts: float
    in_list: bool


class InteractionRecord(NamedTuple):
    """A positive online event (already filtered by the store's ``PositiveRule``, as training filters its log)."""

    user_id: str
    item_id: str
    ts: float


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


# ------------------------------------------------------------------------------ the shared loop


class _Group(Protocol):
    """Running totals of one group of lists (overall, one engine, one model version)."""

    def add(self, recommended: int, outcome: Any) -> None:
        """Count one list of ``recommended`` items whose score is ``outcome`` (PaC: hits; replay: hits, clicked)."""

    def to_dict(self) -> dict[str, Any]: ...


def _per_list(
    impressions: Iterable[ImpressionRecord],
    *,
    k: int,
    window_seconds: float,
    outcome: Callable[[ImpressionRecord, set[str], float], Any],
    group: Callable[[], _Group],
) -> dict[str, Any]:
    """Walk the shown lists: ``outcome(impression, top_k_items, window_end)`` scores each non-empty
    list, and its result goes into the overall, per-engine and per-model-version groups."""
    if k < 1:
        raise ValueError("k must be at least 1")
    total = group()
    by_engine: dict[str, _Group] = defaultdict(group)
    by_version: dict[str, _Group] = defaultdict(group)
    empty = 0
    for imp in impressions:
        top = set(imp.item_ids[:k])
        if not top:
            empty += 1
            continue
        result = outcome(imp, top, imp.ts + window_seconds)
        n = min(k, len(imp.item_ids))
        for g in (total, by_engine[imp.engine or UNKNOWN], by_version[imp.model_version or UNKNOWN]):
            g.add(n, result)
    return {
        "k": k,
        "window_hours": window_seconds / 3600,
        **total.to_dict(),
        "empty_lists": empty,
        "by_engine": {name: g.to_dict() for name, g in sorted(by_engine.items())},
        "by_model_version": {name: g.to_dict() for name, g in sorted(by_version.items())},
    }


def _by_recset(
    engagements: Iterable[EngagementRecord], action_types: Collection[str] | None
) -> dict[str, list[EngagementRecord]]:
    out: dict[str, list[EngagementRecord]] = defaultdict(list)
    for e in engagements:
        if action_types is None or e.action_type in action_types:
            out[e.recset_id].append(e)
    return out


# --------------------------------------------------------------------------------------------- PaC


@dataclass
class _PacGroup:
    k: int
    impressions: int = 0
    pac_sum: float = 0.0
    hits: int = 0
    recommended: int = 0

    def add(self, recommended: int, hits: int) -> None:
        self.impressions += 1
        self.pac_sum += hits / self.k
        self.hits += hits
        self.recommended += recommended

    def to_dict(self) -> dict[str, Any]:
        return {
            "impressions": self.impressions,
            "pac_mean": _ratio(self.pac_sum, self.impressions),
            "pac_micro": _ratio(self.hits, self.recommended),
            "total_hits": self.hits,
            "total_recommended": self.recommended,
        }


def pac(
    impressions: Iterable[ImpressionRecord],
    engagements: Iterable[EngagementRecord],
    *,
    k: int,
    window_seconds: float,
    action_types: Collection[str] | None = None,
) -> dict[str, Any]:
    """PaC overall and by engine and by model version (see the module docstring for the definition)."""
    engaged = _by_recset(engagements, action_types)

    def hits(imp: ImpressionRecord, top: set[str], end: float) -> int:
        return len({e.item_id for e in engaged.get(imp.recset_id, ()) if e.item_id in top and imp.ts <= e.ts <= end})

    return _per_list(impressions, k=k, window_seconds=window_seconds, outcome=hits, group=partial(_PacGroup, k))


# ------------------------------------------------------------------------------------------ replay


@dataclass
class _ReplayGroup:
    impressions: int = 0
    precision_sum: float = 0.0
    hit_lists: int = 0
    clicked: int = 0
    hits: int = 0
    recommended: int = 0

    def add(self, recommended: int, outcome: tuple[int, bool]) -> None:
        hits, clicked = outcome
        self.impressions += 1
        self.precision_sum += hits / recommended
        self.hit_lists += hits > 0
        self.clicked += clicked
        self.hits += hits
        self.recommended += recommended

    def to_dict(self) -> dict[str, Any]:
        return {
            "impressions": self.impressions,
            "precision_at_k": _ratio(self.precision_sum, self.impressions),
            "hit_rate_at_k": _ratio(self.hit_lists, self.impressions),
            "ctr": _ratio(self.clicked, self.impressions),
            "hits": self.hits,
            "recommended": self.recommended,
            "clicked_lists": self.clicked,
        }


@dataclass
class _Timeline:
    """One user's actions sorted by time, for window lookups by bisection."""

    ts: list[float] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[str]:
        lo = bisect.bisect_left(self.ts, start)
        hi = bisect.bisect_right(self.ts, end)
        return self.items[lo:hi]


def replay(
    impressions: Iterable[ImpressionRecord],
    interactions: Iterable[InteractionRecord],
    engagements: Iterable[EngagementRecord],
    *,
    k: int,
    window_seconds: float,
    action_types: Collection[str] | None = None,
) -> dict[str, Any]:
    """Realised Precision@K, HitRate@K and CTR proxy, overall and by engine and model version."""
    engagements = [e for e in engagements if action_types is None or e.action_type in action_types]
    actions = sorted(
        [(i.user_id, i.ts, i.item_id) for i in interactions] + [(e.user_id, e.ts, e.item_id) for e in engagements]
    )
    timelines: dict[str, _Timeline] = defaultdict(_Timeline)
    for user_id, ts, item_id in actions:
        timelines[user_id].ts.append(ts)
        timelines[user_id].items.append(item_id)
    own = _by_recset(engagements, None)

    def hits_and_click(imp: ImpressionRecord, top: set[str], end: float) -> tuple[int, bool]:
        mine = [e for e in own.get(imp.recset_id, ()) if imp.ts <= e.ts <= end]
        later = {e.item_id for e in mine}
        if imp.user_id is not None and imp.user_id in timelines:
            later.update(timelines[imp.user_id].between(imp.ts, end))
        return len(top & later), any(e.item_id in top for e in mine)

    return _per_list(impressions, k=k, window_seconds=window_seconds, outcome=hits_and_click, group=_ReplayGroup)


# ----------------------------------------------------------------------------------------- summary


def latency_stats(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and p50/p95/p99 (linear interpolation between order statistics), in milliseconds."""
    if not len(values):
        return {"mean": None, "p50": None, "p95": None, "p99": None}
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"mean": float(arr.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99)}


def summary(
    impressions: Sequence[ImpressionRecord],
    *,
    since: float,
    until: float,
    catalogue_size: int | None,
    catalogue: Collection[str] | None = None,
) -> dict[str, Any]:
    """Traffic in ``[since, until)`` from the impression log (one impression per answered request).

    Coverage is the share of catalogue items recommended at least once (only ids in ``catalogue``
    count when it is given); ``requests_per_minute`` is requests over the length of the period.
    """
    minutes = (until - since) / 60
    by_endpoint: dict[str, list[ImpressionRecord]] = defaultdict(list)
    for imp in impressions:
        by_endpoint[imp.endpoint].append(imp)
    shown: set[str] = set()
    for imp in impressions:
        shown.update(imp.item_ids)
    if catalogue is not None:
        shown = {i for i in shown if i in catalogue}
    fallbacks = sum(imp.is_fallback for imp in impressions)

    def block(rows: Sequence[ImpressionRecord]) -> dict[str, Any]:
        return {
            "requests": len(rows),
            "requests_per_minute": _ratio(len(rows), minutes) if minutes > 0 else None,
            "unique_users": len({r.user_id for r in rows if r.user_id is not None}),
            "latency_ms": latency_stats([r.latency_ms for r in rows if r.latency_ms is not None]),
            "fallback_rate": _ratio(sum(r.is_fallback for r in rows), len(rows)),
        }

    return {
        "since": since,
        "until": until,
        **block(impressions),
        "fallbacks": fallbacks,
        "items_recommended": len(shown),
        "catalogue_size": catalogue_size,
        "coverage": _ratio(len(shown), catalogue_size) if catalogue_size else None,
        "by_endpoint": {name: block(rows) for name, rows in sorted(by_endpoint.items())},
    }
