"""The store side of the online metrics: the record queries (impressions, engagements, positive
online events) and ``pac``/``replay``/``summary``, which fetch those records and hand them to the
pure functions of ``online_metrics``.

What counts as a positive is the training rule (``PositiveRule``): the default action filter is the
action types with a positive weight, and an online event is a positive exactly when training would
count it (its explicit ``weight`` included).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.data.aggregate import PositiveRule
from app.store import online_metrics
from app.store import schema as t
from app.store.db import IN_CHUNK
from app.store.online_history import active_engagements
from app.store.online_metrics import EngagementRecord, ImpressionRecord, InteractionRecord

#: Computes a metric from the impressions in range and the action types that count.
_Compute = Callable[[list[ImpressionRecord], frozenset[str]], dict[str, Any]]


def _time_range(q: sa.Select, column: sa.Column, start: float | None, end: float | None) -> sa.Select:
    if start is not None:
        q = q.where(column >= start)
    if end is not None:
        q = q.where(column < end)
    return q


class MetricQueriesMixin:
    """``Store`` methods behind ``/metrics/pac``, ``/metrics/replay``, ``/metrics/summary`` and the report."""

    engine: Engine
    positive_rule: PositiveRule
    flush: Callable[..., bool]
    catalogue_size: Callable[[], int]
    retained_from: Callable[[], float | None]

    # ----------------------------------------------------------------- records

    def impression_records(
        self,
        start_ts: float | None = None,
        end_ts: float | None = None,
        engine: str | None = None,
        platform: str | None = None,
    ) -> list[ImpressionRecord]:
        """Impressions with ``start_ts <= ts < end_ts``, oldest first (queued ones are flushed first)."""
        self.flush()
        c = t.rec_impressions.c
        q = sa.select(
            c.recset_id,
            c.user_id,
            c.endpoint,
            c.engine,
            c.model_version,
            c.item_ids,
            c.platform,
            c.is_fallback,
            c.latency_ms,
            c.ts,
        )
        q = _time_range(q, c.ts, start_ts, end_ts)
        if engine:
            q = q.where(c.engine == engine)
        if platform:
            q = q.where(c.platform == platform)
        with self.engine.connect() as conn:
            return [
                ImpressionRecord(
                    r.recset_id,
                    r.user_id,
                    r.endpoint,
                    r.engine,
                    r.model_version,
                    tuple(r.item_ids),
                    r.platform,
                    bool(r.is_fallback),
                    r.latency_ms,
                    float(r.ts),
                )
                for r in conn.execute(q.order_by(c.ts))
            ]

    def engagement_records(
        self,
        start_ts: float | None = None,
        end_ts: float | None = None,
        *,
        impressions_from: float | None = None,
        impressions_to: float | None = None,
        action_types: Collection[str] | None = None,
        user_ids: Collection[str] | None = None,
    ) -> list[EngagementRecord]:
        """Engagements by their own time and/or by the time of the impression they refer to."""
        e, i = t.engagements.c, t.rec_impressions.c
        # Withdrawals and the engagements they take back count for nothing (an undone like is no hit).
        q = sa.select(e.recset_id, e.user_id, e.item_id, e.action_type, e.ts, e.in_list).where(active_engagements())
        q = _time_range(q, e.ts, start_ts, end_ts)
        if impressions_from is not None or impressions_to is not None:
            q = q.join(t.rec_impressions, e.recset_id == i.recset_id)
            q = _time_range(q, i.ts, impressions_from, impressions_to)
        if action_types:
            q = q.where(e.action_type.in_(list(action_types)))
        if user_ids is not None and len(user_ids) <= IN_CHUNK:  # more: filtered below, not in SQL
            q = q.where(e.user_id.in_(list(user_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(e.ts, e.id))
            return [
                EngagementRecord(r.recset_id, r.user_id, r.item_id, r.action_type, float(r.ts), bool(r.in_list))
                for r in rows
                if user_ids is None or r.user_id in user_ids
            ]

    def engaged_through(self, model_version: str) -> set[tuple[str, str]]:
        """(user_id, item_id) of the active engagements with items that lists served by ``model_version``
        contained: what that model itself put in front of the user (the promotion gate's exposure check)."""
        e, i = t.engagements.c, t.rec_impressions.c
        q = (
            sa.select(e.user_id, e.item_id)
            .join(t.rec_impressions, e.recset_id == i.recset_id)
            .where(i.model_version == model_version, e.in_list, active_engagements())
        )
        with self.engine.connect() as conn:
            return {(r.user_id, r.item_id) for r in conn.execute(q)}

    def interaction_records(
        self, start_ts: float | None, end_ts: float | None, user_ids: Collection[str] | None = None
    ) -> list[InteractionRecord]:
        """Online events in ``[start_ts, end_ts)`` that are positives by the training rule (for replay)."""
        e = t.events.c
        q = _time_range(sa.select(e.user_id, e.item_id, e.event, e.rating, e.weight, e.ts), e.ts, start_ts, end_ts)
        if user_ids is not None and len(user_ids) <= IN_CHUNK:
            q = q.where(e.user_id.in_(list(user_ids)))
        rule = self.positive_rule
        with self.engine.connect() as conn:
            return [
                InteractionRecord(r.user_id, r.item_id, float(r.ts))
                for r in conn.execute(q.order_by(e.ts, e.id))
                if (user_ids is None or r.user_id in user_ids) and rule.is_positive(r.event, r.rating, r.weight)
            ]

    # ----------------------------------------------------------------- metrics

    def pac(
        self,
        start_ts: float | None = None,
        end_ts: float | None = None,
        *,
        k: int = 10,
        window_hours: float = 24.0,
        engine: str | None = None,
        platform: str | None = None,
        action_types: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """PaC of the impressions shown in ``[start_ts, end_ts)`` (engagements may come later)."""

        def compute(imps: list[ImpressionRecord], actions: frozenset[str]) -> dict[str, Any]:
            engs = self.engagement_records(impressions_from=start_ts, impressions_to=end_ts, action_types=actions)
            return online_metrics.pac(imps, engs, k=k, window_seconds=window_hours * 3600, action_types=actions)

        return self._over_impressions(start_ts, end_ts, engine, platform, action_types, compute)

    def replay(
        self,
        start_ts: float | None = None,
        end_ts: float | None = None,
        *,
        k: int = 10,
        window_hours: float = 24.0,
        engine: str | None = None,
        platform: str | None = None,
        action_types: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Replay of the impressions shown in ``[start_ts, end_ts)`` against what their users did next."""

        def compute(imps: list[ImpressionRecord], actions: frozenset[str]) -> dict[str, Any]:
            window = window_hours * 3600
            if imps:
                # closed window: the queries' end is exclusive, so they end just past the last list's window
                lo, hi = imps[0].ts, np.nextafter(imps[-1].ts + window, np.inf)
                users = {i.user_id for i in imps if i.user_id is not None}
                later = self.interaction_records(lo, hi, users)
                engs = self.engagement_records(lo, hi, action_types=actions)
            else:
                later, engs = [], []
            return online_metrics.replay(imps, later, engs, k=k, window_seconds=window, action_types=actions)

        return self._over_impressions(start_ts, end_ts, engine, platform, action_types, compute)

    def _over_impressions(
        self,
        start_ts: float | None,
        end_ts: float | None,
        engine: str | None,
        platform: str | None,
        action_types: Collection[str] | None,
        compute: _Compute,
    ) -> dict[str, Any]:
        """The inputs PaC and replay share (the impressions in range, the action types that count:
        by default those with a positive training weight), and the filters echoed in their answer."""
        actions = self.positive_rule.positive_types if action_types is None else frozenset(action_types)
        imps = self.impression_records(start_ts, end_ts, engine, platform)
        filters = {
            "start_ts": start_ts,
            "end_ts": end_ts,
            "engine": engine,
            "platform": platform,
            "action_types": sorted(actions),
        }
        out = {**filters, **compute(imps, actions)}
        kept = self.retained_from()
        if kept is not None and (start_ts is None or start_ts < kept):
            out["retention_note"] = (
                f"lists shown before {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(kept))} were pruned "
                "(python -m app.store prune): this range starts before what is kept"
            )
        return out

    def summary(
        self,
        since: float,
        until: float | None = None,
        *,
        catalogue_size: int | None = None,
        catalogue: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Traffic summary of ``[since, until)``; the catalogue defaults to the seeded ``items`` table."""
        until = time.time() if until is None else until
        if catalogue_size is None:
            catalogue_size = len(catalogue) if catalogue is not None else self.catalogue_size()
        imps = self.impression_records(since, until)
        return online_metrics.summary(
            imps, since=since, until=until, catalogue_size=catalogue_size, catalogue=catalogue
        )
