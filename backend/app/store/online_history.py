"""Reads behind the serving-time online history: what one user did since the model's training data ended,
and which users did anything since a moment (so every worker drops what it cached for them).

A user's activity is their ``POST /events`` rows and their active engagements (not withdrawals and
not withdrawn), newer than the ids the model was trained through, newest first. Both tables are read
through their ``(user_id, ts)`` index, the change scan through the ``received_at`` indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.store import schema as t


@dataclass(frozen=True, slots=True)
class Activity:
    """One thing a user did online: an event or an active engagement (``rating``/``weight`` None for engagements)."""

    item_id: str
    event: str
    ts: float
    rating: float | None = None
    weight: float | None = None


def active_engagements(e: sa.Table = t.engagements) -> sa.ColumnElement[bool]:
    """Engagements that count: not a withdrawal and not withdrawn by a later row."""
    w = e.alias("withdrawal")
    return sa.and_(e.c.withdraws.is_(None), ~sa.exists().where(w.c.withdraws == e.c.id))


class OnlineHistoryMixin:
    """``Store`` methods read by the service's online history (``app.service.core.online``)."""

    engine: Engine

    def user_activity(
        self, user_id: str, *, after_event_id: int = 0, after_engagement_id: int = 0, limit: int = 5_000
    ) -> list[Activity]:
        """The user's online events and active engagements with ids above the given ones, newest first,
        at most ``limit`` of each."""
        ev, en = t.events.c, t.engagements.c
        events_q = (
            sa.select(ev.item_id, ev.event, ev.ts, ev.rating, ev.weight)
            .where(ev.user_id == user_id, ev.id > after_event_id)
            .order_by(ev.ts.desc(), ev.id.desc())
            .limit(limit)
        )
        engagements_q = (
            sa.select(en.item_id, en.action_type, en.ts)
            .where(en.user_id == user_id, en.id > after_engagement_id, active_engagements())
            .order_by(en.ts.desc(), en.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [Activity(r[0], r[1], float(r[2]), r[3], r[4]) for r in conn.execute(events_q)]
            rows += [Activity(r[0], r[1], float(r[2])) for r in conn.execute(engagements_q)]
        rows.sort(key=lambda a: a.ts, reverse=True)
        return rows

    def users_changed_since(self, received_at: float) -> set[str]:
        """Users with an event or an engagement (a withdrawal too) received at or after ``received_at``."""
        with self.engine.connect() as conn:
            users = set(
                conn.execute(sa.select(t.events.c.user_id).where(t.events.c.received_at >= received_at)).scalars()
            )
            users.update(
                conn.execute(
                    sa.select(t.engagements.c.user_id).where(t.engagements.c.received_at >= received_at)
                ).scalars()
            )
        return users
