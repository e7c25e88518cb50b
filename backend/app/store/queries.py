"""Reads for the service and the debug pages: online users and items, a user's online history and
positives, row counts and paged tables."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.data.aggregate import PositiveRule
from app.store import schema as t

#: Most rows one debug page returns.
MAX_PAGE = 1_000


class QueriesMixin:
    """``Store`` methods that read users, items, events and table pages."""

    engine: Engine
    positive_rule: PositiveRule

    # ----------------------------------------------------------------- online users and items

    def new_users_since_training(self, known_user_ids: Collection[str]) -> list[str]:
        """Users first seen online (``POST /events``) that the serving model does not know."""
        return self._online_ids(t.users.c.user_id, t.users.c.source, known_user_ids)

    def new_items_since_training(self, known_item_ids: Collection[str]) -> list[str]:
        return self._online_ids(t.items.c.item_id, t.items.c.source, known_item_ids)

    def _online_ids(self, column: sa.Column, source: sa.Column, known: Collection[str]) -> list[str]:
        known = known if isinstance(known, (set, frozenset, dict)) else set(known)
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(column).where(source == "online").order_by(column)).scalars()
            return [i for i in ids if i not in known]

    def is_online_user(self, user_id: str) -> bool:
        """True when the user is known only from events received online (not from the training log)."""
        with self.engine.connect() as conn:
            source = conn.execute(sa.select(t.users.c.source).where(t.users.c.user_id == user_id)).scalar()
        return source == "online"

    # ----------------------------------------------------------------- one user's online history

    def events_for_user(self, user_id: str, limit: int = 1_000) -> list[dict[str, Any]]:
        """The user's online events, oldest first (the last ``limit``), for cold-start history."""
        e = t.events.c
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(e.user_id, e.item_id, e.event, e.ts, e.rating, e.weight, e.platform)
                    .where(e.user_id == user_id)
                    .order_by(e.ts.desc(), e.id.desc())
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in reversed(rows)]

    def positive_items_for_user(self, user_id: str, limit: int = 1_000) -> list[str]:
        """Items of the user's online events that are positives by the training rule, oldest first."""
        seen: dict[str, None] = {}
        for ev in self.events_for_user(user_id, limit):
            if self.positive_rule.is_positive(ev["event"], ev["rating"], ev["weight"]):
                seen[ev["item_id"]] = None
        return list(seen)

    # ----------------------------------------------------------------- counts and debug pages

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def catalogue_size(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(t.items).where(t.items.c.source == "seed")
                ).scalar_one()
            )

    def page(
        self,
        table: sa.Table,
        *,
        where: Iterable[sa.ColumnElement[bool]] = (),
        order_by: Sequence[sa.ColumnElement[Any]] = (),
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of a table: ``{total, limit, offset, rows}``."""
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        conditions = list(where)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar_one()
            rows = conn.execute(
                sa.select(table).where(*conditions).order_by(*order_by).limit(limit).offset(offset)
            ).mappings()
            return {"total": int(total), "limit": limit, "offset": offset, "rows": [dict(r) for r in rows]}
