"""Engine creation, schema setup and insert helpers for SQLite (default) and PostgreSQL (``postgresql+psycopg://``).

SQLite durability: the database runs in WAL mode. A transaction is durable against a *process* crash
(SIGKILL, OOM kill) as soon as ``COMMIT`` returns, whatever ``synchronous`` says, because the WAL
frames are in the operating system's page cache by then. ``synchronous=NORMAL`` (the default here,
``RECOMMENDER_SQLITE_SYNCHRONOUS``) skips the fsync per commit, so only an OS crash or power loss can
lose the last commits; ``FULL`` fsyncs the WAL on every commit and survives those too, at the cost
of one fsync per acknowledged request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from app.store import schema

SQLITE_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: SQLite connections kept open: one per thread of the server's thread pool (anyio's default is 40).
POOL_SIZE = 40


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


#: JSON columns (item lists, scores) through orjson: the impression writer's main cost was json.dumps.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


#: Rows per INSERT statement in bulk loads (seed, event batches).
CHUNK = 5_000
#: Ids per ``IN (...)`` lookup: SQLite's variable limit is 999 on old builds.
IN_CHUNK = 900


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``seq`` in slices of at most ``size`` (statements and parameter lists stay bounded)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


#: Rows per INSERT on SQLite: the GIL is held while a statement's parameters are bound (about 0.4 ms
#: for 100 rows of 11 values), and the request thread waits that long at most.
ROWS_PER_INSERT = 100


@lru_cache(maxsize=16)
def _multirow_insert(table: sa.Table, n_rows: int) -> str:
    row = "(" + ",".join("?" * len(table.columns)) + ")"
    return f"INSERT INTO {table.name} ({','.join(c.name for c in table.columns)}) VALUES " + ",".join([row] * n_rows)


def row_dict(table: sa.Table, row: tuple) -> dict:
    """A row tuple (``insert_rows``' shape) as the dict SQLAlchemy reads back: JSON columns decoded."""
    return {
        c.name: orjson.loads(v) if v is not None and isinstance(c.type, sa.JSON) else v
        for c, v in zip(table.columns, row, strict=True)
    }


def insert_rows(conn: sa.Connection, table: sa.Table, rows: list[tuple]) -> None:
    """Insert rows given as tuples of ``table``'s columns in order, JSON columns already as JSON text.

    Why this shape, on SQLite: the writer thread does no Python work per row (the request built the
    tuple), and it lets go of the GIL inside ``sqlite3_step`` after every ``ROWS_PER_INSERT`` rows.
    Building parameters from dicts and binding 512 rows per statement held the GIL for up to 4.7 ms at
    a time; this holds it for up to 0.6 ms (``benchmarks/impression_writes.py``). sqlite3's
    ``executemany`` would retake the GIL for every row. Other databases get dicts through
    SQLAlchemy's executemany (psycopg batches it)."""
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), [row_dict(table, r) for r in rows])
        return
    for chunk in chunks(rows, ROWS_PER_INSERT):
        conn.exec_driver_sql(_multirow_insert(table, len(chunk)), tuple(chain.from_iterable(chunk)))


class SchemaVersionError(RuntimeError):
    """The database was written by a different schema version; migrate or point to a new database."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (as hosting platforms write them) use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


WAL_TRIES = 100  # up to about 5 s of retries


def _set_wal(cur: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the lock it needs.

    Switching a new database file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once rather than waiting out the busy timeout when several connections (workers starting
    together) try it at the same moment; once one has switched, the others' PRAGMA finds WAL set."""
    import sqlite3

    for attempt in range(WAL_TRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_TRIES - 1:
                raise
            time.sleep(0.05)


def create_db_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine for ``url``; for a SQLite file, creates the parent directory and sets the pragmas."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        sync = sqlite_synchronous.upper()
        if sync not in SQLITE_SYNCHRONOUS:
            raise ValueError(
                f"sqlite_synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, got {sqlite_synchronous!r}"
            )
        database = parsed.database or ""
        memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if not memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 30}, **_JSON}
        if memory:  # one shared connection, or every connection would see its own empty database
            kwargs["poolclass"] = sa.pool.StaticPool
        else:  # keep a connection per worker thread: opening one (pragmas, WAL) per request was 5x slower
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_SIZE)
        engine = sa.create_engine(parsed, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                _set_wal(cur)
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # PostgreSQL: connections are a server resource (max_connections defaults to 100); writes use 8 threads.
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, **_JSON)


#: PostgreSQL advisory lock held while the schema is created or migrated (any constant of our own).
SCHEMA_LOCK_ID = 7_300_116


def create_schema(engine: Engine) -> int:
    """Create missing tables and the version row, migrate an older schema (``schema.MIGRATIONS``); returns
    the stored version (raises on a database written by newer code)."""
    with engine.begin() as conn:
        # Serialise concurrent starts (several workers on one new database): the first one creates the
        # tables, the others wait here and find them.
        if is_sqlite(engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_ID})")
        row = None
        if sa.inspect(conn).has_table(schema.schema_version.name):
            row = conn.execute(
                sa.select(schema.schema_version.c.version).where(schema.schema_version.c.id == 1)
            ).first()
        version = None if row is None else int(row.version)
        if version is not None and version > schema.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"database schema version {version}, this code expects {schema.SCHEMA_VERSION}: "
                "point DATABASE_URL at a new database or upgrade this code"
            )
        indexes: list[str] = []
        if version is not None and version < schema.SCHEMA_VERSION:
            inspector = sa.inspect(conn)
            for step in range(version, schema.SCHEMA_VERSION):
                for table, column, sql_type in schema.MIGRATIONS[step]["columns"]:
                    if inspector.has_table(table) and column not in {c["name"] for c in inspector.get_columns(table)}:
                        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
                indexes.extend(schema.MIGRATIONS[step]["indexes"])
            conn.execute(schema.schema_version.update().values(version=schema.SCHEMA_VERSION))
        schema.metadata.create_all(conn)
        for statement in indexes:
            conn.exec_driver_sql(statement)
        for name in schema.DROPPED_INDEXES:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        if version is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        schema.schema_version.insert().values(
                            id=1, version=schema.SCHEMA_VERSION, created_at=time.time()
                        )
                    )
            except sa.exc.IntegrityError:  # another process created it at the same moment
                pass
        return schema.SCHEMA_VERSION


def _dialect_insert(engine: Engine, table: sa.Table):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_ignore(engine: Engine, table: sa.Table) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the engine's dialect (races between writers are harmless)."""
    return _dialect_insert(engine, table).on_conflict_do_nothing()


def set_state(conn: sa.Connection, engine: Engine, key: str, value: int, update: Any = None) -> None:
    """``service_state[key]``: ``value`` when the row is new, else ``update`` (default ``value``; it may be
    an expression of the old value, such as ``service_state.c.value + 1``), in one statement."""
    stmt = _dialect_insert(engine, schema.service_state).values(key=key, value=value, updated_at=time.time())
    new = value if update is None else update
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[schema.service_state.c.key], set_={"value": new, "updated_at": stmt.excluded.updated_at}
        )
    )
