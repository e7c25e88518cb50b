"""The ``Store``: every database read and write of the service, behind one object.

Writes of engagements and events are synchronous and committed before the caller answers (one
transaction per request), so a 2xx means the rows are on disk. Impressions go through the batched
``ImpressionWriter`` off the request path. On SQLite, writes from this process are serialised by a
lock (SQLite allows one writer; waiting on a Python lock is cheaper and fairer than its busy-retry).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from functools import partial
from operator import itemgetter
from typing import Any, TypeVar

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.config import DEFAULT_EVENT_WEIGHTS, Settings
from app.store import metrics
from app.store import schema as t
from app.store.db import create_schema, insert_ignore, insert_rows, is_sqlite, make_engine, row_dict
from app.store.metrics import EngagementRecord, ImpressionRecord, InteractionRecord
from app.store.writer import ImpressionWriter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Rows per INSERT statement in bulk loads (seed) and in ``IN (...)`` lookups.
CHUNK = 5_000
MAX_PAGE = 1_000
#: The order of the values in a queued impression row (``impression_row``).
IMPRESSION_COLUMNS = tuple(c.name for c in t.rec_impressions.columns)
#: (endpoint, engine, is_fallback) of a queued row: the key of ``Store.impression_counts``.
_counted_as = itemgetter(*(IMPRESSION_COLUMNS.index(c) for c in ("endpoint", "engine", "is_fallback")))


class NotFound(LookupError):
    """The referenced row does not exist (mapped to 404)."""


class Conflict(ValueError):
    """The request contradicts stored data (mapped to 422), e.g. an engagement by another user."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def impression_row(
    recset_id: str,
    user_id: str | None,
    endpoint: str,
    engine: str,
    model_version: str | None,
    item_ids: Sequence[str],
    scores: Sequence[float],
    platform: str | None = None,
    is_fallback: bool = False,
    latency_ms: float | None = None,
    ts: float | None = None,
) -> tuple:
    """One impression as the writer inserts it (``db.insert_rows``): values in ``IMPRESSION_COLUMNS``
    order, the item and score lists as JSON text (NaN scores become null). Built once, on the
    request, so the writer thread has no Python work per row."""
    return (
        str(recset_id),
        None if user_id is None or user_id == "" else str(user_id),
        str(endpoint)[:64],
        str(engine)[:64],
        None if model_version is None else str(model_version)[:128],
        orjson.dumps([str(i) for i in item_ids]).decode(),
        orjson.dumps(scores, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        None if not platform else str(platform)[:64],
        bool(is_fallback),
        None if latency_ms is None else float(latency_ms),
        time.time() if ts is None else float(ts),
    )


class Store:
    """Database access for the service, the CLI and the metrics endpoints."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 1024,
        flush_seconds: float = 0.2,
        event_weights: Mapping[str, float] | None = None,
        rating_threshold: float = 4.0,
    ):
        self.engine = engine
        self.event_weights = dict(event_weights if event_weights is not None else DEFAULT_EVENT_WEIGHTS)
        self.rating_threshold = rating_threshold
        self._write_lock = threading.Lock() if is_sqlite(engine) else nullcontext()
        self.writer = ImpressionWriter(self._insert_impressions, batch_size=batch_size, flush_seconds=flush_seconds)
        self._stats_lock = threading.Lock()
        #: (endpoint, engine, is_fallback) -> impressions logged by this process (for /metrics).
        self.impression_counts: Counter[tuple[str, str, bool]] = Counter()
        # Request writes run here, not in the server's 40-thread pool: with SQLite one writer at a time
        # anyway, dozens of threads queueing on the write lock under the GIL collapsed throughput ~4x.
        self._workers = 2 if is_sqlite(engine) else 8
        self._executor: ThreadPoolExecutor | None = None
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Store":
        engine = make_engine(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
        return cls(
            engine,
            batch_size=settings.impression_batch_size,
            flush_seconds=settings.impression_flush_seconds,
            event_weights=settings.event_weights,
            rating_threshold=settings.rating_threshold,
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "Store":
        return cls(make_engine(url), **kwargs)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> "Store":
        """Create the schema (idempotent) and start the impression writer."""
        if not self._started:
            create_schema(self.engine)
            self.writer.start()
            self._executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="store")
            self._started = True
        return self

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call (a write) on the store's own small thread pool, from async code."""
        if self._executor is None:
            raise RuntimeError("the store is not started (call store.start())")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Write every queued impression, stop the writer, release connections."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # requests being written finish first
            self._executor = None
        self.writer.close()
        self.engine.dispose()
        self._started = False

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> "Store":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (serialised per process on SQLite)."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @property
    def action_types(self) -> frozenset[str]:
        """Accepted engagement action types: the event types the training weights know."""
        return frozenset(self.event_weights)

    def is_positive_action(self, action_type: str) -> bool:
        """Negative or neutral actions (weight 0: dislike, skip) never count as a hit."""
        return self.event_weights.get(action_type, 1.0) > 0

    # ----------------------------------------------------------------- impressions

    def log_impression(self, *args: Any, **kwargs: Any) -> bool:
        """Queue one shown list for writing (non-blocking; ``impression_row``'s arguments); False if the
        queue was full and it was dropped."""
        row = impression_row(*args, **kwargs)
        with self._stats_lock:
            self.impression_counts[_counted_as(row)] += 1
        return self.writer.put(row[0], row)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every impression logged so far is in the database."""
        return self.writer.flush(timeout)

    def _insert_impressions(self, rows: list[tuple]) -> None:
        with self._write() as conn:
            insert_rows(conn, t.rec_impressions, rows)

    def get_impression(self, recset_id: str) -> dict[str, Any] | None:
        """The impression, from the writer queue when it is not written yet."""
        row = self.writer.pending(recset_id)
        if row is not None:
            return row_dict(t.rec_impressions, row)
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t.rec_impressions).where(t.rec_impressions.c.recset_id == recset_id)).mappings().first()
        return dict(found) if found else None

    # ----------------------------------------------------------------- engagements and events

    def _claim_key(self, conn: Connection, key: str | None, endpoint: str, response: dict[str, Any], rows: int) -> None:
        if key is not None:
            conn.execute(t.request_keys.insert().values(key=key, endpoint=endpoint, rows=rows, response=response, ts=time.time()))

    def _replayed(self, key: str | None) -> dict[str, Any] | None:
        if key is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.request_keys.c.response).where(t.request_keys.c.key == key)).first()
        return None if row is None else {**row.response, "duplicate": True}

    def record_engagement(
        self,
        recset_id: str,
        user_id: str,
        item_id: str,
        action_type: str,
        platform: str | None = None,
        ts: float | None = None,
        request_key: str | None = None,
    ) -> dict[str, Any]:
        """Store one engagement, committed before returning.

        Raises ``NotFound`` for an unknown ``recset_id`` and ``Conflict`` when ``user_id`` is not the
        user the list was shown to. An item outside the list is stored with ``in_list=False``.
        With ``request_key`` (the ``Idempotency-Key`` header) a repeated request stores nothing and
        gets the first answer back with ``duplicate: true``.
        """
        replay = self._replayed(request_key)
        if replay is not None:
            return replay
        impression = self.get_impression(recset_id)
        if impression is None:
            raise NotFound(f"unknown recset_id {recset_id!r}: no recommendation response had this id")
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
        try:
            with self._write() as conn:
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
                    "counts_as_hit": row["in_list"] and self.is_positive_action(action_type),
                }
                self._claim_key(conn, request_key, "engagement", response, 1)
        except sa.exc.IntegrityError:
            replay = self._replayed(request_key)
            if replay is not None:  # the same key committed concurrently
                return replay
            if self.get_impression(recset_id) is None:  # the impression was never written (writer dropped it)
                raise NotFound(f"unknown recset_id {recset_id!r}: its impression was not stored") from None
            raise
        return {**response, "duplicate": False}

    def record_events(
        self,
        rows: Sequence[tuple[str, str, str, int, float | None, float | None, str | None]],
        request_key: str | None = None,
    ) -> dict[str, Any]:
        """Store validated events ``(user_id, item_id, event, ts, rating, weight, platform)`` in one transaction.

        Users and items never seen before are added to ``users``/``items`` with ``source='online'``;
        the answer lists them (the model cannot personalise for them until the next training run).
        """
        replay = self._replayed(request_key)
        if replay is not None:
            return replay
        now = time.time()
        user_first: dict[str, int] = {}
        item_first: dict[str, int] = {}
        for user_id, item_id, _e, ts, *_ in rows:
            user_first[user_id] = min(ts, user_first.get(user_id, ts))
            item_first[item_id] = min(ts, item_first.get(item_id, ts))
        values = [
            {"user_id": u, "item_id": i, "event": e, "ts": int(ts), "rating": r, "weight": w,
             "platform": p or None, "received_at": now, "request_key": request_key}
            for u, i, e, ts, r, w, p in rows
        ]
        try:
            with self._write() as conn:
                new_users = self._missing(conn, t.users.c.user_id, list(user_first))
                new_items = self._missing(conn, t.items.c.item_id, list(item_first))
                for chunk in _chunks(values):
                    conn.execute(t.events.insert(), list(chunk))
                if new_users:
                    conn.execute(insert_ignore(self.engine, t.users),
                                 [{"user_id": u, "source": "online", "first_seen_ts": user_first[u]} for u in new_users])
                if new_items:
                    conn.execute(insert_ignore(self.engine, t.items),
                                 [{"item_id": i, "source": "online", "first_seen_ts": item_first[i]} for i in new_items])
                response = {
                    "accepted": len(values),
                    "new_users": len(new_users),
                    "new_items": len(new_items),
                    "new_user_ids": sorted(new_users)[:100],
                    "new_item_ids": sorted(new_items)[:100],
                }
                self._claim_key(conn, request_key, "events", response, len(values))
        except sa.exc.IntegrityError:
            replay = self._replayed(request_key)
            if replay is not None:
                return replay
            raise
        return {**response, "duplicate": False}

    @staticmethod
    def _missing(conn: Connection, column: sa.Column, ids: list[str]) -> list[str]:
        found: set[str] = set()
        for chunk in _chunks(ids, 900):  # SQLite's variable limit is 999 on old builds
            found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
        return [i for i in ids if i not in found]

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

    def events_for_user(self, user_id: str, limit: int = 1_000) -> list[dict[str, Any]]:
        """The user's online events, oldest first (the last ``limit``), for cold-start history."""
        e = t.events.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.user_id, e.item_id, e.event, e.ts, e.rating, e.weight, e.platform)
                .where(e.user_id == user_id).order_by(e.ts.desc(), e.id.desc()).limit(limit)
            ).mappings().all()
        return [dict(r) for r in reversed(rows)]

    def positive_items_for_user(self, user_id: str, limit: int = 1_000) -> list[str]:
        """Items of the user's online events that count as positives (weights, rating threshold), oldest first."""
        seen: dict[str, None] = {}
        for ev in self.events_for_user(user_id, limit):
            if self.is_positive_event(ev["event"], ev["rating"]):
                seen[ev["item_id"]] = None
        return list(seen)

    def is_positive_event(self, event: str, rating: float | None) -> bool:
        if self.event_weights.get(event, 0.0) <= 0:
            return False
        return rating is None or event != "rating" or rating >= self.rating_threshold

    # ----------------------------------------------------------------- seed

    def seed(self, log: Any, catalogue: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
        """Replace users, items and interactions with a training log (``EventLog``) and catalogue.

        Child rows (interactions) are deleted first. Users/items first seen online stay listed as
        ``online`` unless the new log contains them.
        """
        n = len(log)
        user_first: dict[str, int] = {}
        item_first: dict[str, int] = {}
        for u, i, ts in zip(log.user_id.tolist(), log.item_id.tolist(), log.ts.tolist()):
            if u not in user_first or ts < user_first[u]:
                user_first[u] = ts
            if i not in item_first or ts < item_first[i]:
                item_first[i] = ts
        item_rows = []
        for item_id, item in catalogue.items():
            extra = {k: v for k, v in item.items() if k not in ("item_id", "title", "genres", "year")}
            item_rows.append({"item_id": str(item_id), "title": item.get("title"), "genres": list(item.get("genres") or []),
                              "year": item.get("year"), "extra": extra or None, "source": "seed",
                              "first_seen_ts": item_first.get(str(item_id))})
        for item_id in item_first.keys() - set(map(str, catalogue)):
            item_rows.append({"item_id": item_id, "title": None, "genres": [], "year": None, "extra": None,
                              "source": "seed", "first_seen_ts": item_first[item_id]})
        user_rows = [{"user_id": u, "source": "seed", "first_seen_ts": ts} for u, ts in user_first.items()]
        rating = np.where(np.isnan(log.rating), None, log.rating.astype(object)) if n else []
        weight = np.where(np.isnan(log.weight), None, log.weight.astype(object)) if n else []
        with self._write() as conn:
            conn.execute(t.interactions.delete())
            conn.execute(t.users.delete())
            conn.execute(t.items.delete())
            for chunk in _chunks(user_rows):
                conn.execute(t.users.insert(), list(chunk))
            for chunk in _chunks(item_rows):
                conn.execute(t.items.insert(), list(chunk))
            cols = (log.user_id.tolist(), log.item_id.tolist(), log.event.tolist(), log.ts.tolist(),
                    list(rating), list(weight), log.platform.tolist())
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                conn.execute(t.interactions.insert(), [
                    {"user_id": cols[0][j], "item_id": cols[1][j], "event": cols[2][j], "ts": int(cols[3][j]),
                     "rating": None if cols[4][j] is None else float(cols[4][j]),
                     "weight": None if cols[5][j] is None else float(cols[5][j]),
                     "platform": cols[6][j] or None}
                    for j in range(start, stop)
                ])
            # users and items known only from online events stay recorded as such
            e = t.events.c
            online_users = conn.execute(sa.select(e.user_id, sa.func.min(e.ts)).group_by(e.user_id)).all()
            online_items = conn.execute(sa.select(e.item_id, sa.func.min(e.ts)).group_by(e.item_id)).all()
            add_users = [{"user_id": u, "source": "online", "first_seen_ts": ts} for u, ts in online_users if u not in user_first]
            seeded_items = {r["item_id"] for r in item_rows}
            add_items = [{"item_id": i, "source": "online", "first_seen_ts": ts} for i, ts in online_items if i not in seeded_items]
            for chunk in _chunks(add_users):
                conn.execute(t.users.insert(), list(chunk))
            for chunk in _chunks(add_items):
                conn.execute(t.items.insert(), list(chunk))
        return {"users": len(user_rows), "items": len(item_rows), "interactions": n,
                "online_users": len(add_users), "online_items": len(add_items)}

    # ----------------------------------------------------------------- metric inputs

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
        q = sa.select(c.recset_id, c.user_id, c.endpoint, c.engine, c.model_version, c.item_ids, c.platform,
                      c.is_fallback, c.latency_ms, c.ts)
        q = self._time_range(q, c.ts, start_ts, end_ts)
        if engine:
            q = q.where(c.engine == engine)
        if platform:
            q = q.where(c.platform == platform)
        with self.engine.connect() as conn:
            return [ImpressionRecord(r.recset_id, r.user_id, r.endpoint, r.engine, r.model_version, tuple(r.item_ids),
                                     r.platform, bool(r.is_fallback), r.latency_ms, float(r.ts))
                    for r in conn.execute(q.order_by(c.ts))]

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
        q = sa.select(e.recset_id, e.user_id, e.item_id, e.action_type, e.ts, e.in_list)
        q = self._time_range(q, e.ts, start_ts, end_ts)
        if impressions_from is not None or impressions_to is not None:
            q = q.join(t.rec_impressions, e.recset_id == i.recset_id)
            q = self._time_range(q, i.ts, impressions_from, impressions_to)
        if action_types:
            q = q.where(e.action_type.in_(list(action_types)))
        if user_ids is not None and len(user_ids) <= 900:
            q = q.where(e.user_id.in_(list(user_ids)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(e.ts, e.id))
            return [EngagementRecord(r.recset_id, r.user_id, r.item_id, r.action_type, float(r.ts), bool(r.in_list))
                    for r in rows if user_ids is None or r.user_id in user_ids]

    def interaction_records(
        self, start_ts: float | None, end_ts: float | None, user_ids: Collection[str] | None = None
    ) -> list[InteractionRecord]:
        """Online events in ``[start_ts, end_ts)`` that count as positives (for replay)."""
        e = t.events.c
        q = self._time_range(sa.select(e.user_id, e.item_id, e.event, e.rating, e.ts), e.ts, start_ts, end_ts)
        if user_ids is not None and len(user_ids) <= 900:
            q = q.where(e.user_id.in_(list(user_ids)))
        with self.engine.connect() as conn:
            return [InteractionRecord(r.user_id, r.item_id, float(r.ts))
                    for r in conn.execute(q.order_by(e.ts, e.id))
                    if (user_ids is None or r.user_id in user_ids) and self.is_positive_event(r.event, r.rating)]

    @staticmethod
    def _time_range(q: sa.Select, column: sa.Column, start: float | None, end: float | None) -> sa.Select:
        if start is not None:
            q = q.where(column >= start)
        if end is not None:
            q = q.where(column < end)
        return q

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def catalogue_size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.items).where(t.items.c.source == "seed")).scalar_one())

    # ----------------------------------------------------------------- metrics

    def positive_action_types(self) -> frozenset[str]:
        """Default action filter of the metrics: actions with a positive training weight."""
        return frozenset(a for a in self.action_types if self.is_positive_action(a))

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
        actions = self.positive_action_types() if action_types is None else frozenset(action_types)
        imps = self.impression_records(start_ts, end_ts, engine, platform)
        engs = self.engagement_records(impressions_from=start_ts, impressions_to=end_ts, action_types=actions)
        result = metrics.pac(imps, engs, k=k, window_seconds=window_hours * 3600, action_types=actions)
        return {**self._filters(start_ts, end_ts, engine, platform, actions), **result}

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
        actions = self.positive_action_types() if action_types is None else frozenset(action_types)
        imps = self.impression_records(start_ts, end_ts, engine, platform)
        window = window_hours * 3600
        if imps:
            lo, hi = imps[0].ts, imps[-1].ts + window
            users = {i.user_id for i in imps if i.user_id is not None}
            later = self.interaction_records(lo, np.nextafter(hi, np.inf), users)
            engs = self.engagement_records(lo, np.nextafter(hi, np.inf), action_types=actions)
        else:
            later, engs = [], []
        result = metrics.replay(imps, later, engs, k=k, window_seconds=window, action_types=actions)
        return {**self._filters(start_ts, end_ts, engine, platform, actions), **result}

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
        return metrics.summary(imps, since=since, until=until, catalogue_size=catalogue_size, catalogue=catalogue)

    @staticmethod
    def _filters(start_ts, end_ts, engine, platform, actions) -> dict[str, Any]:  # noqa: ANN001
        return {"start_ts": start_ts, "end_ts": end_ts, "engine": engine, "platform": platform,
                "action_types": sorted(actions)}

    # ----------------------------------------------------------------- debug pages

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
            rows = conn.execute(sa.select(table).where(*conditions).order_by(*order_by).limit(limit).offset(offset)).mappings()
            return {"total": int(total), "limit": limit, "offset": offset, "rows": [dict(r) for r in rows]}
