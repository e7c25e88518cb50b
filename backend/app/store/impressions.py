"""Logged recommendation lists (impressions): the row format, queueing, flushing and lookup.

Impressions are written off the request path by the batched ``ImpressionWriter``; this mixin builds
the rows, counts them for ``/metrics`` and reads them back, from the writer's queue when they are not
on disk yet (an engagement may arrive first).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from operator import itemgetter
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.store import schema as t
from app.store.db import insert_rows, row_dict
from app.store.writer import ImpressionWriter

#: The order of the values in a queued impression row (``impression_row``).
IMPRESSION_COLUMNS = tuple(c.name for c in t.rec_impressions.columns)
#: (endpoint, engine, is_fallback) of a queued row: the key of the impression counters.
_counted_as = itemgetter(*(IMPRESSION_COLUMNS.index(c) for c in ("endpoint", "engine", "is_fallback")))


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


class ImpressionsMixin:
    """``Store`` methods for impressions (``Store.__init__`` makes the writer and the counters)."""

    engine: Engine
    writer: ImpressionWriter
    _stats_lock: threading.Lock
    #: (endpoint, engine, is_fallback) -> impressions logged by this process (for /metrics).
    impression_counts: Counter[tuple[str, str, bool]]
    _write: Callable[[], AbstractContextManager[Connection]]

    def log_impression(self, *args: Any, **kwargs: Any) -> bool:
        """Queue one shown list for writing (non-blocking; ``impression_row``'s arguments); False if the
        queue was full and it was dropped."""
        row = impression_row(*args, **kwargs)
        with self._stats_lock:
            self.impression_counts[_counted_as(row)] += 1
        return self.writer.put(row[0], row)

    def impression_counts_snapshot(self) -> dict[tuple[str, str, bool], int]:
        """A copy of the counters, ``(endpoint, engine, is_fallback) -> lists logged by this process``,
        taken under the lock (request threads keep counting while ``/metrics`` is scraped)."""
        with self._stats_lock:
            return dict(self.impression_counts)

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
            found = (
                conn.execute(sa.select(t.rec_impressions).where(t.rec_impressions.c.recset_id == recset_id))
                .mappings()
                .first()
            )
        return dict(found) if found else None
