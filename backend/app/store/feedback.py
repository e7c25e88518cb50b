"""What users did: engagements with a shown list and online events, each request one committed
transaction, made idempotent by an optional ``Idempotency-Key`` (``request_keys`` table).

A key belongs to one endpoint and one body: repeated with the same body it stores nothing and gets
the first answer back with ``duplicate: true``; with another body it is a ``KeyReused`` (422), never a
silent drop; the same key on another endpoint is another key. Two requests racing with the same key
are settled by the key's primary key (the loser re-reads the winner's answer).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.data.aggregate import PositiveRule
from app.store import schema as t
from app.store.db import IN_CHUNK, chunks, insert_ignore
from app.store.online_history import active_engagements
from app.store.writer import ImpressionWriter

#: One validated event: (user_id, item_id, event, ts, rating, weight, platform).
EventRow = tuple[str, str, str, int, float | None, float | None, str | None]
#: Actions that exclude each other: a like withdraws the user's active dislike of the item, and back.
OPPOSITE_ACTIONS = {"like": "dislike", "dislike": "like"}


class NotFound(LookupError):
    """The referenced row does not exist (mapped to 404)."""


class UnknownList(NotFound):
    """No recommendation response had this ``recset_id`` (yet: another worker may still be writing it)."""


class KeyReused(ValueError):
    """An ``Idempotency-Key`` sent again with a different body (mapped to 422)."""


class Conflict(ValueError):
    """The request contradicts stored data (mapped to 422), e.g. an engagement by another user."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class FeedbackMixin:
    """``Store`` methods that record engagements and events."""

    engine: Engine
    writer: ImpressionWriter
    positive_rule: PositiveRule
    _write: Callable[[], AbstractContextManager[Connection]]
    get_impression: Callable[[str], dict[str, Any] | None]

    def _claim_key(
        self, conn: Connection, key: str | None, endpoint: str, body: str, response: dict[str, Any], rows: int
    ) -> None:
        if key is not None:
            conn.execute(
                t.request_keys.insert().values(
                    key=scoped_key(endpoint, key),
                    endpoint=endpoint,
                    rows=rows,
                    response=response,
                    ts=time.time(),
                    body_sha256=body,
                )
            )

    def _replayed(self, key: str | None, endpoint: str, body: str) -> dict[str, Any] | None:
        """The first answer to this (endpoint, key), when the body is the same; ``KeyReused`` when not."""
        if key is None:
            return None
        c = t.request_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.response, c.body_sha256).where(c.key == scoped_key(endpoint, key))).first()
        if row is None:
            return None
        if row.body_sha256 is not None and row.body_sha256 != body:
            raise KeyReused(
                f"Idempotency-Key {key!r} was already used on this endpoint with a different body: "
                "send a new key for a new request"
            )
        return {**row.response, "duplicate": True}

    def record_engagement(
        self,
        recset_id: str,
        user_id: str,
        item_id: str,
        action_type: str,
        platform: str | None = None,
        ts: float | None = None,
        request_key: str | None = None,
        withdraw: bool = False,
    ) -> dict[str, Any]:
        """Store one engagement, committed before returning.

        Raises ``NotFound`` for an unknown ``recset_id`` and ``Conflict`` when ``user_id`` is not the
        user the list was shown to. An item outside the list is stored with ``in_list=False``.
        With ``request_key`` (the ``Idempotency-Key`` header) a repeated request stores nothing and
        gets the first answer back with ``duplicate: true``.

        ``withdraw``: the row takes back the user's latest active engagement of this action type with
        this item (``NotFound`` when there is none); it never counts as a hit. A ``like`` (``dislike``)
        also withdraws the user's active ``dislike`` (``like``) of the item, in the same transaction:
        ``withdrew`` lists them.
        """
        body = body_hash(recset_id, user_id, item_id, action_type, platform, ts, withdraw)
        replay = self._replayed(request_key, "engagement", body)
        if replay is not None:
            return replay
        impression = self.get_impression(recset_id)
        if impression is None:
            raise UnknownList(f"unknown recset_id {recset_id!r}: no recommendation response had this id")
        shown_to = impression["user_id"]
        if shown_to is not None and shown_to != user_id:
            raise Conflict("user_id", f"recset {recset_id} was shown to user {shown_to!r}, not to {user_id!r}")
        if self.writer.pending(recset_id) is not None:
            self.writer.flush()  # the engagement row references the impression row
        item_ids = list(impression["item_ids"])
        rank = item_ids.index(item_id) + 1 if item_id in item_ids else None
        now = time.time()
        row = {
            "recset_id": recset_id,
            "user_id": user_id,
            "item_id": item_id,
            "action_type": action_type,
            "platform": platform if platform is not None else impression["platform"],
            "ts": now if ts is None else float(ts),
            "in_list": rank is not None,
            "rank": rank,
            "received_at": now,
            "request_key": request_key,
        }
        withdrew: list[int] = []
        try:
            with self._write() as conn:
                if withdraw:
                    target = _active_ids(conn, user_id, item_id, action_type)
                    if not target:
                        raise NotFound(
                            f"nothing to withdraw: user {user_id!r} has no active {action_type!r} of item {item_id!r}"
                        )
                    row["withdraws"] = target[0]
                elif action_type in OPPOSITE_ACTIONS:
                    opposite = OPPOSITE_ACTIONS[action_type]
                    withdrew = _active_ids(conn, user_id, item_id, opposite)
                    for old in withdrew:
                        conn.execute(
                            t.engagements.insert().values(
                                **{**row, "action_type": opposite, "withdraws": old, "request_key": None}
                            )
                        )
                engagement_id = conn.execute(t.engagements.insert().values(**row)).inserted_primary_key[0]
                response = {
                    "id": int(engagement_id),
                    "recset_id": recset_id,
                    "user_id": user_id,
                    "item_id": item_id,
                    "action_type": action_type,
                    "ts": row["ts"],
                    "in_list": row["in_list"],
                    "rank": rank,
                    # an engagement carries no rating or weight: its type decides, as in PaC's default filter
                    "counts_as_hit": row["in_list"]
                    and not withdraw
                    and action_type in self.positive_rule.positive_types,
                    "withdraws": row.get("withdraws"),
                    "withdrew": withdrew,
                }
                self._claim_key(conn, request_key, "engagement", body, response, 1)
        except sa.exc.IntegrityError:
            replay = self._replayed(request_key, "engagement", body)
            if replay is not None:  # the same key committed concurrently
                return replay
            if self.get_impression(recset_id) is None:  # the impression was never written (writer dropped it)
                raise UnknownList(f"unknown recset_id {recset_id!r}: its impression was not stored") from None
            raise
        return {**response, "duplicate": False}

    def record_events(self, rows: Sequence[EventRow], request_key: str | None = None) -> dict[str, Any]:
        """Store validated events ``(user_id, item_id, event, ts, rating, weight, platform)`` in one transaction.

        Users and items never seen before are added to ``users``/``items`` with ``source='online'``;
        the answer lists them (the model cannot personalise for them until the next training run).
        """
        body = body_hash(*rows)
        replay = self._replayed(request_key, "events", body)
        if replay is not None:
            return replay
        now = time.time()
        user_first: dict[str, int] = {}
        item_first: dict[str, int] = {}
        for user_id, item_id, _e, ts, *_ in rows:
            user_first[user_id] = min(ts, user_first.get(user_id, ts))
            item_first[item_id] = min(ts, item_first.get(item_id, ts))
        values = [
            {
                "user_id": u,
                "item_id": i,
                "event": e,
                "ts": int(ts),
                "rating": r,
                "weight": w,
                "platform": p or None,
                "received_at": now,
                "request_key": request_key,
            }
            for u, i, e, ts, r, w, p in rows
        ]
        try:
            with self._write() as conn:
                new_users = _missing(conn, t.users.c.user_id, list(user_first))
                new_items = _missing(conn, t.items.c.item_id, list(item_first))
                for chunk in chunks(values):
                    conn.execute(t.events.insert(), list(chunk))
                if new_users:
                    conn.execute(
                        insert_ignore(self.engine, t.users),
                        [{"user_id": u, "source": "online", "first_seen_ts": user_first[u]} for u in new_users],
                    )
                if new_items:
                    conn.execute(
                        insert_ignore(self.engine, t.items),
                        [{"item_id": i, "source": "online", "first_seen_ts": item_first[i]} for i in new_items],
                    )
                response = {
                    "accepted": len(values),
                    "new_users": len(new_users),
                    "new_items": len(new_items),
                    "new_user_ids": sorted(new_users)[:100],
                    "new_item_ids": sorted(new_items)[:100],
                }
                self._claim_key(conn, request_key, "events", body, response, len(values))
        except sa.exc.IntegrityError:
            replay = self._replayed(request_key, "events", body)
            if replay is not None:
                return replay
            raise
        return {**response, "duplicate": False}


def scoped_key(endpoint: str, key: str) -> str:
    """The stored form of an ``Idempotency-Key``: hashed with its endpoint (one key per endpoint, 64 characters)."""
    return hashlib.sha256(f"{endpoint}\n{key}".encode()).hexdigest()


def body_hash(*values: Any) -> str:
    """sha256 of a request's validated values: what a repeated key must repeat."""
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)).hexdigest()


def _active_ids(conn: Connection, user_id: str, item_id: str, action_type: str) -> list[int]:
    """Ids of the user's active engagements of ``action_type`` with the item, newest first."""
    e = t.engagements.c
    q = (
        sa.select(e.id)
        .where(e.user_id == user_id, e.item_id == item_id, e.action_type == action_type, active_engagements())
        .order_by(e.ts.desc(), e.id.desc())
    )
    return [int(i) for i in conn.execute(q).scalars()]


def _missing(conn: Connection, column: sa.Column, ids: list[str]) -> list[str]:
    """The ``ids`` not yet in ``column``, in their given order."""
    found: set[str] = set()
    for chunk in chunks(ids, IN_CHUNK):
        found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return [i for i in ids if i not in found]
