"""Loading a training log and its catalogue into ``users``, ``items`` and ``interactions``.

Seeding replaces the three tables in one transaction. Users and items known only from online events
(``POST /events``) stay recorded as ``online`` unless the new log contains them, so the service can
still tell which users the freshly trained model has never seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.store import schema as t
from app.store.db import CHUNK, chunks

#: Catalogue fields with their own column; any other field of an item goes to ``items.extra``.
ITEM_COLUMNS = ("item_id", "title", "genres", "year")


class SeedMixin:
    """``Store.seed``."""

    _write: Callable[[], AbstractContextManager[Connection]]

    def seed(self, log: Any, catalogue: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        """Replace users, items and interactions with a training log (``EventLog``) and catalogue.

        Child rows (interactions) are deleted first. Users/items first seen online stay listed as
        ``online`` unless the new log contains them.
        """
        n = len(log)
        user_first, item_first = _first_seen(log)
        item_rows = _item_rows(catalogue, item_first)
        user_rows = [{"user_id": u, "source": "seed", "first_seen_ts": ts} for u, ts in user_first.items()]
        with self._write() as conn:
            conn.execute(t.interactions.delete())
            conn.execute(t.users.delete())
            conn.execute(t.items.delete())
            _insert(conn, t.users, user_rows)
            _insert(conn, t.items, item_rows)
            _insert_interactions(conn, log)
            # users and items known only from online events stay recorded as such
            e = t.events.c
            online_users = conn.execute(sa.select(e.user_id, sa.func.min(e.ts)).group_by(e.user_id)).all()
            online_items = conn.execute(sa.select(e.item_id, sa.func.min(e.ts)).group_by(e.item_id)).all()
            add_users = [
                {"user_id": u, "source": "online", "first_seen_ts": ts} for u, ts in online_users if u not in user_first
            ]
            seeded_items = {r["item_id"] for r in item_rows}
            add_items = [
                {"item_id": i, "source": "online", "first_seen_ts": ts}
                for i, ts in online_items
                if i not in seeded_items
            ]
            _insert(conn, t.users, add_users)
            _insert(conn, t.items, add_items)
        return {
            "users": len(user_rows),
            "items": len(item_rows),
            "interactions": n,
            "online_users": len(add_users),
            "online_items": len(add_items),
        }


def _first_seen(log: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Earliest timestamp of every user and of every item in the log."""
    user_first: dict[str, int] = {}
    item_first: dict[str, int] = {}
    for u, i, ts in zip(log.user_id.tolist(), log.item_id.tolist(), log.ts.tolist(), strict=False):
        if u not in user_first or ts < user_first[u]:
            user_first[u] = ts
        if i not in item_first or ts < item_first[i]:
            item_first[i] = ts
    return user_first, item_first


def _item_rows(catalogue: Mapping[str, Mapping[str, Any]], item_first: Mapping[str, int]) -> list[dict[str, Any]]:
    """The catalogue's items, then the log's items missing from it (untitled: the log may be ahead of it)."""
    rows = []
    for item_id, item in catalogue.items():
        extra = {k: v for k, v in item.items() if k not in ITEM_COLUMNS}
        rows.append(
            {
                "item_id": str(item_id),
                "title": item.get("title"),
                "genres": list(item.get("genres") or []),
                "year": item.get("year"),
                "extra": extra or None,
                "source": "seed",
                "first_seen_ts": item_first.get(str(item_id)),
            }
        )
    for item_id in item_first.keys() - set(map(str, catalogue)):
        rows.append(
            {
                "item_id": item_id,
                "title": None,
                "genres": [],
                "year": None,
                "extra": None,
                "source": "seed",
                "first_seen_ts": item_first[item_id],
            }
        )
    return rows


def _insert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows):
        conn.execute(table.insert(), list(chunk))


def _insert_interactions(conn: Connection, log: Any) -> None:
    """The log's events as ``interactions`` rows, NaN ratings and weights as NULL, built one chunk at a
    time (a 25M-event log would not fit in memory as dicts)."""
    n = len(log)
    rating = np.where(np.isnan(log.rating), None, log.rating.astype(object)) if n else []
    weight = np.where(np.isnan(log.weight), None, log.weight.astype(object)) if n else []
    cols = (
        log.user_id.tolist(),
        log.item_id.tolist(),
        log.event.tolist(),
        log.ts.tolist(),
        list(rating),
        list(weight),
        log.platform.tolist(),
    )
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        conn.execute(
            t.interactions.insert(),
            [
                {
                    "user_id": cols[0][j],
                    "item_id": cols[1][j],
                    "event": cols[2][j],
                    "ts": int(cols[3][j]),
                    "rating": None if cols[4][j] is None else float(cols[4][j]),
                    "weight": None if cols[5][j] is None else float(cols[5][j]),
                    "platform": cols[6][j] or None,
                }
                for j in range(start, stop)
            ],
        )
