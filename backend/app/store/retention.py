"""Retention: what the logs keep, and how far back they still reach.

``prune(keep_days)`` deletes the impressions (with the engagements with them), the engagements and,
with ``events_keep_days``, the online events older than the horizon, in bounded batches (one short
transaction each, so the service keeps writing meanwhile), and records the horizon
(``service_state``), so PaC and replay can say when a range starts before what is kept. Events are
training data: they are pruned only when asked, after retraining has ingested them.
The service applies ``RECOMMENDER_RETENTION_DAYS`` itself once a day when it is set (``prune_due``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.store import schema as t
from app.store.db import set_state

RETAINED_FROM = "retained_from"
#: Rows deleted per transaction.
BATCH = 5_000
DAY = 86_400.0


def prune_due(retained_from: float | None, keep_days: float, now: float, every_seconds: float = DAY) -> bool:
    """Whether a scheduled prune should run now: nothing was ever pruned, or the last prune's horizon
    has fallen more than ``every_seconds`` behind ``keep_days`` (so several workers prune once a day, not
    each of them)."""
    return retained_from is None or retained_from < now - keep_days * DAY - every_seconds


class RetentionMixin:
    """``Store.prune`` and the horizon it leaves."""

    engine: Engine
    _write: Callable[[], AbstractContextManager[Connection]]

    def retained_from(self) -> float | None:
        """Unix seconds before which impressions and engagements were pruned (None: nothing was)."""
        c = t.service_state.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(c.value).where(c.key == RETAINED_FROM)).scalar()
        return None if value is None else float(value)

    def prune(
        self, keep_days: float, *, events_keep_days: float | None = None, now: float | None = None
    ) -> dict[str, Any]:
        """Delete what is older than ``keep_days`` (events only with ``events_keep_days``); the counts."""
        if keep_days <= 0 or (events_keep_days is not None and events_keep_days <= 0):
            raise ValueError("keep days must be > 0")
        now = time.time() if now is None else now
        horizon = now - keep_days * DAY
        imp, eng = t.rec_impressions.c, t.engagements.c
        deleted = {"impressions": 0, "engagements": 0, "events": 0}
        while True:  # an old list's engagements go with it (they reference it), whatever their own time
            with self._write() as conn:
                ids = list(conn.execute(sa.select(imp.recset_id).where(imp.ts < horizon).limit(BATCH)).scalars())
                if not ids:
                    break
                deleted["engagements"] += conn.execute(t.engagements.delete().where(eng.recset_id.in_(ids))).rowcount
                deleted["impressions"] += conn.execute(
                    t.rec_impressions.delete().where(imp.recset_id.in_(ids))
                ).rowcount
        deleted["engagements"] += self._delete_before(t.engagements, eng.id, eng.received_at, horizon)
        if events_keep_days is not None:
            ev = t.events.c
            deleted["events"] = self._delete_before(t.events, ev.id, ev.received_at, now - events_keep_days * DAY)
        with self._write() as conn:
            set_state(conn, self.engine, RETAINED_FROM, int(horizon))
        return {"horizon": horizon, "deleted": deleted}

    def _delete_before(self, table: sa.Table, id_col: sa.Column, ts_col: sa.Column, horizon: float) -> int:
        total = 0
        while True:
            with self._write() as conn:
                ids = list(conn.execute(sa.select(id_col).where(ts_col < horizon).limit(BATCH)).scalars())
                if not ids:
                    return total
                total += conn.execute(table.delete().where(id_col.in_(ids))).rowcount
