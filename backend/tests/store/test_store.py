"""The Store itself on SQLite and PostgreSQL: lifecycle (close writes the queue), settings, the write
path under 64 concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc


def test_close_writes_everything_queued(db_url: str) -> None:
    s = Store.from_url(db_url, batch_size=1000, flush_seconds=60).start()  # nothing would be written for a minute
    for _ in range(20):
        sc.show_list(s)
    s.close()
    s2 = Store.from_url(db_url).start()
    try:
        assert s2.count(t.rec_impressions) == 20
    finally:
        s2.close()


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


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store: Store) -> None:
    """64 threads write events (one transaction each) and engagements at the same time as impressions."""
    rids = [sc.show_list(store) for _ in range(64)]
    n_clients, per_client = 64, 15
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            for r in range(per_client):
                store.record_events(
                    [(f"c{c}", f"c{c}-r{r}-e{j}", "view", sc.T0 + r, None, None, "web") for j in range(3)]
                )
                sc.show_list(store, user=f"c{c}")
            store.record_engagement(rids[c], "u1", "a", "click")
        except BaseException as exc:
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
