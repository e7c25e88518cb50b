"""The ``Store``: every database read and write of the service, behind one object.

Writes of engagements and events are synchronous and committed before the caller answers (one
transaction per request), so a 2xx means the rows are on disk. Impressions go through the batched
``ImpressionWriter`` off the request path. On SQLite, writes from this process are serialised by a
lock (SQLite allows one writer; waiting on a Python lock is cheaper and fairer than its busy-retry).

This module holds the engine, the lifecycle and the write path; the methods by topic come from the
mixins: ``impressions``, ``feedback`` (engagements, events), ``seed``, ``queries``, ``metric_queries`` and
``online_history``, ``coordination``, ``retention``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from app.config import DEFAULT_EVENT_WEIGHTS, Settings
from app.data.aggregate import PositiveRule
from app.store.coordination import CoordinationMixin
from app.store.db import create_db_engine, create_schema, is_sqlite
from app.store.feedback import FeedbackMixin
from app.store.impressions import ImpressionsMixin
from app.store.metric_queries import MetricQueriesMixin
from app.store.online_history import OnlineHistoryMixin
from app.store.queries import QueriesMixin
from app.store.retention import RetentionMixin
from app.store.seed import SeedMixin
from app.store.writer import ImpressionWriter

T = TypeVar("T")


class Store(
    ImpressionsMixin,
    FeedbackMixin,
    SeedMixin,
    QueriesMixin,
    MetricQueriesMixin,
    OnlineHistoryMixin,
    CoordinationMixin,
    RetentionMixin,
):
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
        #: What is a positive and how much it weighs: the rule training uses, from the same settings.
        self.positive_rule = PositiveRule(
            dict(event_weights if event_weights is not None else DEFAULT_EVENT_WEIGHTS), rating_threshold
        )
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if is_sqlite(engine) else nullcontext()
        self.writer = ImpressionWriter(self._insert_impressions, batch_size=batch_size, flush_seconds=flush_seconds)
        self._stats_lock = threading.Lock()
        self.impression_counts = Counter()
        # Request writes run here, not in the server's 40-thread pool: with SQLite one writer at a time
        # anyway, dozens of threads queueing on the write lock under the GIL collapsed throughput ~4x.
        self._workers = 2 if is_sqlite(engine) else 8
        self._executor: ThreadPoolExecutor | None = None
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        engine = create_db_engine(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous)
        return cls(
            engine,
            batch_size=settings.impression_batch_size,
            flush_seconds=settings.impression_flush_seconds,
            event_weights=settings.event_weights,
            rating_threshold=settings.rating_threshold,
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        return cls(create_db_engine(url), **kwargs)

    # ----------------------------------------------------------------- positives

    @property
    def event_weights(self) -> dict[str, float]:
        """The training weight of each event type (``positive_rule.weights``)."""
        return dict(self.positive_rule.weights)

    @property
    def rating_threshold(self) -> float:
        return self.positive_rule.rating_threshold

    @property
    def action_types(self) -> frozenset[str]:
        """Accepted engagement action types: the event types the training weights know."""
        return frozenset(self.positive_rule.weights)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Store:
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

    def __enter__(self) -> Store:
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
