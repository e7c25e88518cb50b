"""The Store on SQLite and PostgreSQL: schema, batched impressions, synchronous writes, idempotency,
concurrency, seeding, online users."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.store import Conflict, NotFound, Store
from app.store import schema as t
from app.store.db import SchemaVersionError, create_schema
from app.store.writer import ImpressionWriter
from tests.store import scenario as sc


def _imp(store: Store, user: str = "u1", items=("a", "b", "c"), **kw) -> str:
    rid = str(uuid.uuid4())
    store.log_impression(rid, user, "/recommendations", "nn", "v1", list(items), [0.9, 0.5, 0.1][: len(items)], **kw)
    return rid


def test_schema_version_is_stored_and_checked(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(t.schema_version.c.version)).scalar_one() == t.SCHEMA_VERSION
    assert create_schema(store.engine) == t.SCHEMA_VERSION  # idempotent
    with store.engine.begin() as conn:
        conn.execute(t.schema_version.update().values(version=t.SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match="schema version"):
        create_schema(store.engine)


def test_impressions_are_batched_and_flushed(store: Store) -> None:
    ids = [_imp(store, platform="web", latency_ms=1.5) for _ in range(150)]
    assert store.flush()
    assert store.count(t.rec_impressions) == 150
    row = store.get_impression(ids[7])
    assert row["item_ids"] == ["a", "b", "c"] and row["scores"] == [0.9, 0.5, 0.1]
    assert row["platform"] == "web" and row["is_fallback"] is False and row["latency_ms"] == 1.5


def test_close_writes_everything_queued(db_url: str) -> None:
    s = Store.from_url(db_url, batch_size=1000, flush_seconds=60).start()  # nothing would be written for a minute
    for _ in range(20):
        _imp(s)
    s.close()
    s2 = Store.from_url(db_url).start()
    try:
        assert s2.count(t.rec_impressions) == 20
    finally:
        s2.close()


def test_engagement_for_impression_still_queued(db_url: str) -> None:
    s = Store.from_url(db_url, batch_size=1000, flush_seconds=60).start()
    try:
        rid = _imp(s)
        assert s.writer.pending(rid) is not None
        out = s.record_engagement(rid, "u1", "b", "click")
        assert out["in_list"] and out["rank"] == 2 and out["counts_as_hit"]
        assert s.writer.pending(rid) is None and s.count(t.engagements) == 1
    finally:
        s.close()


def test_engagement_errors_and_flags(store: Store) -> None:
    rid = _imp(store)
    with pytest.raises(NotFound):
        store.record_engagement(str(uuid.uuid4()), "u1", "a", "click")
    with pytest.raises(Conflict) as exc:
        store.record_engagement(rid, "u2", "a", "click")
    assert exc.value.field == "user_id"
    off = store.record_engagement(rid, "u1", "zzz", "click")
    assert off["in_list"] is False and off["rank"] is None and off["counts_as_hit"] is False
    dis = store.record_engagement(rid, "u1", "a", "dislike")
    assert dis["in_list"] is True and dis["counts_as_hit"] is False
    anon = _imp(store, user=None)  # a /popular list without a user accepts any user's engagement
    assert store.record_engagement(anon, "whoever", "a", "click")["in_list"]
    assert store.count(t.engagements) == 3


def test_idempotency_key(store: Store) -> None:
    rid = _imp(store)
    first = store.record_engagement(rid, "u1", "a", "click", request_key="k-1")
    again = store.record_engagement(rid, "u1", "a", "click", request_key="k-1")
    assert first["duplicate"] is False and again["duplicate"] is True and again["id"] == first["id"]
    rows = [("u1", "x", "watch", sc.T0, None, None, "web")]
    e1 = store.record_events(rows, request_key="k-2")
    e2 = store.record_events(rows, request_key="k-2")
    assert e1["accepted"] == 1 and e2["duplicate"] is True
    assert store.count(t.engagements) == 1 and store.count(t.events) == 1


def test_events_record_new_users_and_items(store: Store) -> None:
    store.seed(sc.seed_log(), sc.catalogue(3))
    out = store.record_events([
        ("u1", "i1", "watch", sc.T0, None, None, "web"),  # both known from the seed
        ("new-user", "i2", "click", sc.T0 + 5, None, None, None),
        ("new-user", "new-item", "rating", sc.T0 + 1, 5.0, None, "ios"),
    ])
    assert out["accepted"] == 3 and out["new_user_ids"] == ["new-user"] and out["new_item_ids"] == ["new-item"]
    assert store.new_users_since_training({"u1", "u2"}) == ["new-user"]
    assert store.new_users_since_training({"new-user"}) == []
    assert store.new_items_since_training(set()) == ["new-item"]
    assert store.is_online_user("new-user") and not store.is_online_user("u1") and not store.is_online_user("nobody")
    history = store.events_for_user("new-user")
    assert [(e["item_id"], e["ts"]) for e in history] == [("new-item", sc.T0 + 1), ("i2", sc.T0 + 5)]
    assert store.positive_items_for_user("new-user") == ["new-item", "i2"]
    # a second batch with the same user does not make it new again
    assert store.record_events([("new-user", "i3", "view", sc.T0 + 9, None, None, None)])["new_users"] == 0


def test_seed_replaces_and_keeps_online_users(store: Store) -> None:
    store.record_events([("online-only", "i1", "view", sc.T0, None, None, None)])
    counts = store.seed(sc.seed_log(), sc.catalogue(5))
    assert counts == {"users": 2, "items": 5, "interactions": 3, "online_users": 1, "online_items": 0}
    assert store.count(t.interactions) == 3
    counts = store.seed(sc.seed_log(), sc.catalogue(4))  # re-seed: children deleted first, nothing doubled
    assert counts["items"] == 4 and store.count(t.interactions) == 3 and store.count(t.items) == 4
    with store.engine.connect() as conn:
        src = dict(conn.execute(sa.select(t.users.c.user_id, t.users.c.source)).all())
        item = conn.execute(sa.select(t.items).where(t.items.c.item_id == "i2")).mappings().one()
        inter = conn.execute(sa.select(t.interactions).where(t.interactions.c.event == "rating")).mappings().one()
    assert src == {"u1": "seed", "u2": "seed", "online-only": "online"}
    assert item["title"] == "Item 2" and item["genres"] == ["Drama"] and item["year"] == 2002
    assert inter["rating"] == 5.0 and inter["weight"] is None and inter["platform"] is None


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store: Store) -> None:
    """64 threads write events (one transaction each) and engagements at the same time as impressions."""
    rids = [_imp(store) for _ in range(64)]
    n_clients, per_client = 64, 15
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            for r in range(per_client):
                store.record_events([(f"c{c}", f"c{c}-r{r}-e{j}", "view", sc.T0 + r, None, None, "web") for j in range(3)])
                _imp(store, user=f"c{c}")
            store.record_engagement(rids[c], "u1", "a", "click")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(client, range(n_clients)))
    assert not errors
    store.flush()
    with store.engine.connect() as conn:
        per_item = conn.execute(sa.select(t.events.c.item_id, sa.func.count()).group_by(t.events.c.item_id)).all()
    assert len(per_item) == n_clients * per_client * 3 and all(n == 1 for _, n in per_item)
    assert store.count(t.engagements) == n_clients
    assert store.count(t.rec_impressions) == 64 + n_clients * per_client
    assert store.count(t.users) == n_clients  # every client's user recorded once, as online


def test_writer_survives_a_bad_row_and_keeps_going(sqlite_url: str) -> None:
    s = Store.from_url(sqlite_url, batch_size=10, flush_seconds=0.01).start()
    try:
        rid = _imp(s)
        s.flush()
        s.writer.retries = 0
        s.log_impression(rid, "u1", "/recommendations", "nn", "v1", ["a"], [1.0])  # same recset_id again: the batch fails, the row is dropped
        good = _imp(s)
        s.flush()
        assert s.get_impression(good) is not None and s.writer.dropped == 1 and s.writer.running
    finally:
        s.close()


def test_log_impression_does_not_block() -> None:
    gate = threading.Event()
    w = ImpressionWriter(lambda rows: gate.wait(5), batch_size=1, flush_seconds=0)
    w.start()
    started = time.perf_counter()
    for n in range(1000):
        w.put(str(n), (n,))
    assert time.perf_counter() - started < 0.5  # the writer is stuck; puts still return at once
    assert w.backlog() == 1000
    gate.set()
    w.close()
    assert w.backlog() == 0 and w.written == 1000


def test_from_settings_sqlite_file_in_wal_mode(tmp_path) -> None:
    from app.config import Settings

    s = Store.from_settings(Settings(data_dir=tmp_path / "data", sqlite_synchronous="full")).start()
    try:
        assert (tmp_path / "data" / "recommender.db").is_file()
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        s.close()
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Store.from_settings(Settings(data_dir=tmp_path, sqlite_synchronous="sometimes"))


def test_postgres_urls_use_psycopg3() -> None:
    from app.store.db import normalise_url

    assert normalise_url("postgres://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert normalise_url("postgresql://h/db") == "postgresql+psycopg://h/db"
    assert normalise_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_drain_writes_the_rows_it_found_not_those_added_meanwhile() -> None:
    """Chasing the rows that arrive during a write made a busy server write a few rows per transaction."""
    batches: list[int] = []

    def write(rows: list[tuple]) -> None:
        batches.append(len(rows))
        if len(batches) == 1:
            for n in range(3):  # requests keep logging while the batch is written
                w.put(f"late{n}", (n,))

    w = ImpressionWriter(write, batch_size=100)
    for n in range(5):
        w.put(str(n), (n,))
    assert w.flush()  # not started: drains inline
    assert batches == [5] and w.backlog() == 3
    w.close()
    assert batches == [5, 3] and w.backlog() == 0
