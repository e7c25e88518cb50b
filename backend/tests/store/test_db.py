"""``insert_rows`` on SQLite (tuples, one multi-row statement per ``ROWS_PER_INSERT`` rows), ``create_schema``
and its version check, URL normalisation."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from app.store import Store
from app.store import schema as t
from app.store.db import (
    ROWS_PER_INSERT,
    SchemaVersionError,
    chunks,
    create_db_engine,
    create_schema,
    insert_rows,
    normalise_url,
)


def _row(i: int) -> dict:
    return {
        "recset_id": f"r{i:05d}",
        "user_id": None if i % 3 == 0 else f"u{i}",
        "endpoint": "/popular",
        "engine": "popular",
        "model_version": "v1",
        "item_ids": [f"i{i}", "x"],
        "scores": [float(i), 0.5],
        "platform": "web",
        "is_fallback": i % 2 == 0,
        "latency_ms": 1.25,
        "ts": 1_700_000_000.0 + i,
    }


def _tuple(row: dict) -> tuple:
    """The row as the impression writer queues it: column order, JSON columns as JSON text."""
    return tuple(
        orjson.dumps(row[c.name]).decode() if isinstance(c.type, sa.JSON) else row[c.name]
        for c in t.rec_impressions.columns
    )


def test_rows_round_trip_across_statement_chunks(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    rows = [_row(i) for i in range(ROWS_PER_INSERT * 3 + 17)]  # three full statements and a short one
    with engine.begin() as conn:
        insert_rows(conn, t.rec_impressions, [_tuple(r) for r in rows])
    with engine.connect() as conn:
        back = [dict(r._mapping) for r in conn.execute(sa.select(t.rec_impressions).order_by("recset_id"))]
    assert back == rows  # JSON, booleans and NULLs decode as SQLAlchemy's own insert would have written them


def test_a_failing_chunk_rolls_back_the_transaction(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    rows = [_row(i) for i in range(ROWS_PER_INSERT * 2)] + [_row(3)]  # duplicate key in the last statement
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        insert_rows(conn, t.rec_impressions, [_tuple(r) for r in rows])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.rec_impressions)).scalar_one() == 0


def test_create_schema_drops_the_indexes_it_no_longer_wants(tmp_path):
    """A database made by earlier code keeps working, without the per-user impression index."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ix_rec_impressions_user_ts ON rec_impressions (user_id, ts)"))
    create_schema(engine)
    names = {ix["name"] for ix in sa.inspect(engine).get_indexes("rec_impressions")}
    assert "ix_rec_impressions_ts" in names and not names & set(t.DROPPED_INDEXES)


def test_schema_version_is_stored_and_checked(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_version.c.version)).scalar_one() == t.SCHEMA_VERSION
    assert create_schema(store.engine) == t.SCHEMA_VERSION  # idempotent
    with store.engine.begin() as conn:
        conn.execute(t.schema_version.update().values(version=t.SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="schema version"):
        create_schema(store.engine)


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgres://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalise_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert normalise_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_chunks_cover_the_sequence_in_order() -> None:
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == [] and [list(c) for c in chunks([1, 2], 5)] == [[1, 2]]


def test_a_version_1_database_is_migrated_in_place(tmp_path) -> None:
    """Earlier code's database (no ``withdraws`` column) gains it, keeps its rows, and is marked current."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE engagements (id INTEGER PRIMARY KEY, recset_id VARCHAR(64), user_id VARCHAR(128), "
            "item_id VARCHAR(128), action_type VARCHAR(64), platform VARCHAR(64), ts FLOAT, in_list BOOLEAN, "
            "rank INTEGER, received_at FLOAT, request_key VARCHAR(128))"
        )
        conn.exec_driver_sql("INSERT INTO engagements VALUES (7, 'r', 'u', 'i', 'like', NULL, 1.0, 1, 1, 1.0, NULL)")
        conn.exec_driver_sql("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER, created_at FLOAT)")
        conn.exec_driver_sql("INSERT INTO schema_version VALUES (1, 1, 0.0)")
    assert create_schema(engine) == t.SCHEMA_VERSION
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.engagements.c.id, t.engagements.c.withdraws)).all() == [(7, None)]
        assert conn.execute(sa.select(t.schema_version.c.version)).scalar_one() == t.SCHEMA_VERSION
    assert "ix_engagements_received" in {ix["name"] for ix in sa.inspect(engine).get_indexes("engagements")}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_workers_creating_the_schema_at_the_same_moment_all_succeed(dialect, tmp_path, request) -> None:
    """Several workers starting on one new database: each calls ``create_schema`` at once (released
    together by a barrier); without the lock some died with ``table ... already exists``."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if dialect == "sqlite":
        url = f"sqlite:///{(tmp_path / 'new.db').as_posix()}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = create_db_engine(url)
        with engine.begin() as conn:
            t.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS schema_version"))
        engine.dispose()
    workers = 8
    engines = [create_db_engine(url) for _ in range(workers)]
    barrier = threading.Barrier(workers)

    def start(engine) -> int:
        barrier.wait()
        return create_schema(engine)

    try:
        with ThreadPoolExecutor(workers) as pool:
            versions = list(pool.map(start, engines))
    finally:
        for engine in engines:
            engine.dispose()
    assert versions == [t.SCHEMA_VERSION] * workers


def test_switching_to_wal_waits_out_a_locked_database(monkeypatch) -> None:
    """Workers opening a new SQLite file together: SQLite refuses the switch to WAL at once ("database is
    locked") instead of waiting; the switch is retried, and any other error still raises."""
    import sqlite3

    from app.store import db

    class Cursor:
        def __init__(self, errors):
            self.errors, self.calls = list(errors), 0

        def execute(self, sql):
            self.calls += 1
            if self.errors:
                raise sqlite3.OperationalError(self.errors.pop(0))

    monkeypatch.setattr(db.time, "sleep", lambda s: None)
    locked = Cursor(["database is locked", "database is locked"])
    db._set_wal(locked)
    assert locked.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        db._set_wal(Cursor(["disk I/O error"]))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db._set_wal(Cursor(["database is locked"] * db.WAL_TRIES))
