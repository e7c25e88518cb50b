"""Reads for the service and the debug pages: online users and items, a user's online history and
positives, row counts and paged tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    def online_items(self) -> list[str]:
        """Items first seen in ``POST /events`` (never in the training log), sorted: the serving model cannot know them."""
        c = t.items.c
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(c.item_id).where(c.source == "online").order_by(c.item_id)).scalars())

    def is_online_user(self, user_id: str) -> bool:
        """True when the user is known only from events received online (not from the training log)."""
        with self.engine.connect() as conn:
            source = conn.execute(sa.select(t.users.c.source).where(t.users.c.user_id == user_id)).scalar()
        return source == "online"

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
