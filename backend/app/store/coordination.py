"""What the workers and replicas of one service share besides the data: the reload generation.

``POST /admin/reload`` reaches one worker; it reloads and bumps the generation, and every other
worker, which polls it (``app.service.core.loading.follow_reloads``), reloads too. One row in
``service_state``; an upsert, so concurrent bumps never lose one.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from app.store import schema as t
from app.store.db import set_state

RELOAD = "reload"


class CoordinationMixin:
    """``Store`` methods for the state workers share."""

    engine: Engine
    _write: Callable[[], AbstractContextManager[Connection]]

    def reload_generation(self) -> int:
        """How many reloads have been asked for so far (0 before the first)."""
        c = t.service_state.c
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(c.value).where(c.key == RELOAD)).scalar()
        return int(value or 0)

    def request_reload(self) -> int:
        """Count one more reload request; returns the new generation."""
        c = t.service_state.c
        with self._write() as conn:
            set_state(conn, self.engine, RELOAD, 1, update=c.value + 1)
            return int(conn.execute(sa.select(c.value).where(c.key == RELOAD)).scalar_one())
