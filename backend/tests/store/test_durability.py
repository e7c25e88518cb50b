"""The real service under uvicorn: every acknowledged engagement/event survives SIGKILL of the server;
64 concurrent clients posting thousands of events lose none and duplicate none."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.store import Store
from app.store import schema as t
from app.store.db import create_db_engine
from tests.store.conftest import service_process

pytestmark = pytest.mark.slow

T0 = 1_767_225_600


def _impressions(url: str, n: int) -> list[str]:
    """Lists shown before the test (written and closed, as the service's writer would have)."""
    store = Store.from_url(url).start()
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for rid in ids:
        store.log_impression(rid, "u1", "/recommendations", "nn", "v1", ["a", "b", "c"], [3, 2, 1], platform="web")
    store.close()
    return ids


def _stored(url: str) -> tuple[dict[str, int], set[int]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            events = dict(
                conn.execute(sa.select(t.events.c.item_id, sa.func.count()).group_by(t.events.c.item_id)).all()
            )
            engagements = set(conn.execute(sa.select(t.engagements.c.id)).scalars())
    finally:
        engine.dispose()
    return events, engagements


def test_acknowledged_rows_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'crash.db').as_posix()}"
    recsets = _impressions(url, 8)
    server = service_process(tmp_path, url).start()
    acked_events: list[str] = []
    acked_engagements: list[int] = []
    sent_events: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5.0) as http:
            n = 0
            while not stop.is_set():
                n += 1
                marker = f"k{c}-{n}"
                with lock:
                    sent_events.add(marker)
                try:
                    r = http.post(
                        "/events", json=[{"user_id": f"c{c}", "item_id": marker, "event": "view", "ts": T0 + n}]
                    )
                    if r.status_code == 201:
                        with lock:
                            acked_events.append(marker)
                    e = http.post(
                        "/events/engagement",
                        json={
                            "recset_id": recsets[c % len(recsets)],
                            "user_id": "u1",
                            "item_id": "a",
                            "action_type": "click",
                        },
                    )
                    if e.status_code == 201:
                        with lock:
                            acked_engagements.append(e.json()["id"])
                except httpx.HTTPError:
                    return  # the server is gone

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client, c) for c in range(6)]
        deadline = time.monotonic() + 30
        while len(acked_events) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # mid-stream: requests are in flight
        stop.set()
        for f in futures:
            f.result()
    assert len(acked_events) >= 100 and acked_engagements

    events, engagements = _stored(url)
    assert set(acked_events) <= set(events), "an acknowledged event was lost"
    assert set(acked_engagements) <= engagements, "an acknowledged engagement was lost"
    assert set(events) <= sent_events and all(n == 1 for n in events.values())  # nothing invented or doubled

    restarted = service_process(tmp_path, url).start()  # the database opens cleanly after the kill
    try:
        with httpx.Client(base_url=restarted.url, timeout=5.0) as http:
            assert http.get("/debug/events", params={"limit": 1}).json()["total"] == len(events)
            assert http.get("/debug/engagements", params={"limit": 1}).json()["total"] == len(engagements)
            r = http.post(
                "/events/engagement",
                json={"recset_id": recsets[0], "user_id": "u1", "item_id": "b", "action_type": "like"},
            )
            assert r.status_code == 201
    finally:
        restarted.kill()


def test_64_concurrent_clients_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'load.db').as_posix()}"
    recsets = _impressions(url, 64)
    server = service_process(tmp_path, url).start()
    n_clients, posts, batch = 64, 8, 5  # 2,624 events in 640 POSTs, plus 128 engagements
    statuses: list[int] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60.0) as http:
            for p in range(posts):
                events = [
                    {"user_id": f"c{c}", "item_id": f"c{c}-p{p}-e{j}", "event": "view", "ts": T0 + p}
                    for j in range(batch)
                ]
                codes = [http.post("/events", json=events).status_code]
                if p % 4 == 0:
                    codes.append(
                        http.post(
                            "/events/engagement",
                            json={"recset_id": recsets[c], "user_id": "u1", "item_id": "b", "action_type": "click"},
                        ).status_code
                    )
                if p == 0:  # a client retry with the same Idempotency-Key stores nothing twice
                    key = {"Idempotency-Key": f"retry-{c}"}
                    retry = [{"user_id": f"c{c}", "item_id": f"c{c}-retry", "event": "like", "ts": T0}]
                    codes += [
                        http.post("/events", json=retry, headers=key).status_code,
                        http.post("/events", json=retry, headers=key).status_code,
                    ]
                with lock:
                    statuses.extend(codes)

    try:
        with ThreadPoolExecutor(n_clients) as pool:
            list(pool.map(client, range(n_clients)))
    finally:
        server.kill()
    assert sorted(set(statuses)) == [200, 201], f"unexpected statuses {sorted(set(statuses))}"
    events, engagements = _stored(url)
    expected = n_clients * posts * batch + n_clients
    assert len(events) == expected, f"{expected - len(events)} events lost"
    assert all(n == 1 for n in events.values()), "duplicated events"
    assert len(engagements) == n_clients * (posts // 4)
