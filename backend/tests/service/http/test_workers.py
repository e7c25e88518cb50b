"""Several uvicorn workers on one database behave like one (SQLite and PostgreSQL): ten starts on a new
database all come up with every worker; 64 clients fetching lists from one worker and reporting
engagements to another get no 404 and no 5xx, and every acknowledged engagement survives SIGKILL of the
whole server; a reload asked of one worker reaches all.

Which worker holds a connection is read from Linux ``/proc`` (see ``workers_of``): uvicorn logs nothing
per worker at ``--log-level warning``, and a worker accepts connections only once its start-up is
complete, so a worker that answered has started.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.store import schema as t
from app.store.db import create_db_engine
from tests.live_server import LiveServer
from tests.service.modeldir import write_model_dir
from tests.store.conftest import postgres_url  # noqa: F401 - fixture used here

pytestmark = pytest.mark.slow

WORKERS = 4
STARTS = 10
CLIENTS = 64
LOAD_SECONDS = 4.0
T0 = 1_767_225_600


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path):
    """A function that gives a new, empty database URL each time it is called."""
    if request.param == "sqlite":
        counter = iter(range(100))
        return lambda: f"sqlite:///{tmp_path / f'db-{next(counter)}.sqlite'}"
    url = request.getfixturevalue("postgres_url")

    def empty() -> str:
        engine = create_db_engine(url)
        with engine.begin() as conn:
            t.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS schema_version"))
        engine.dispose()
        return url

    return empty


def serve(model_dir: Path, url: str, log: Path) -> LiveServer:
    settings = {
        "RECOMMENDER_MODEL_DIR": str(model_dir),
        "RECOMMENDER_DATA_DIR": str(log.parent),
        "DATABASE_URL": url,
        "RECOMMENDER_RELOAD_POLL_SECONDS": "0.2",
    }
    return LiveServer(settings, log, workers=WORKERS).start()


def full_log(server: LiveServer) -> str:
    return server.log_path.read_text(errors="replace")  # read_log() keeps only the end


def client_port(response: httpx.Response) -> int:
    """The local port of the connection that carried ``response``: it names the connection in ``/proc``."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def workers_of(server: LiveServer, ports: set[int]) -> dict[int, int]:
    """The server process holding each open connection from these client ports.

    The server's end of a connection is a socket in ``/proc/net/tcp`` (local port: the server's, remote
    port: the client's); the one process with that socket among its open files accepted it."""
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, state, *rest = line.split()
        port = int(remote.rsplit(":", 1)[1], 16)
        if int(local.rsplit(":", 1)[1], 16) == server.port and state == "01" and port in ports:  # 01: established
            inodes[f"socket:[{rest[5]}]"] = port
    owners = {}
    for pid in server.pids():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in inodes:
                owners[inodes[target]] = pid
    return owners


def all_workers_answer(server: LiveServer, timeout: float = 30.0) -> set[int]:
    """Opens connections (kept open, so each is another accept) until every worker has answered /ready
    with the model; returns their pids, or fails after ``timeout``."""
    clients: list[httpx.Client] = []
    answered: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(answered) < WORKERS:
            assert time.monotonic() < deadline, f"only {len(answered)} workers answered:\n{server.read_log()}"
            client = httpx.Client(base_url=server.url, timeout=10)
            clients.append(client)
            r = client.get("/ready")
            assert r.status_code == 200 and r.json()["model_version"] == "test-v1", r.text
            answered.update(workers_of(server, {client_port(r)}).values())
    finally:
        for client in clients:
            client.close()
    return answered


def test_ten_fresh_starts_bring_up_every_worker(model_dir: Path, tmp_path: Path, database) -> None:
    """Four workers create the schema of a new database at the same moment; every one comes up.

    Ten starts, because the workers reach ``create_schema`` within a few to a few hundred milliseconds of
    each other: with its lock taken out, one start in 25 failed here (SQLite, "table already
    exists"), so a single start would rarely show the race."""
    took = []
    for start in range(STARTS):
        began = time.monotonic()
        server = serve(model_dir, database(), tmp_path / f"start-{start}" / "server.log")
        try:
            assert len(all_workers_answer(server)) == WORKERS
            took.append(time.monotonic() - began)
        finally:
            server.stop()
        log = full_log(server)  # after the stop: the shutdown of every worker is clean too
        assert "Traceback" not in log and "already exists" not in log, log
    print(f"{STARTS} starts, all {WORKERS} workers up in {min(took):.1f}-{max(took):.1f} s")


def test_64_clients_across_workers_lose_nothing_on_sigkill(model_dir: Path, tmp_path: Path, database) -> None:
    """Each client fetches lists on one connection and reports on another, so most engagements reach a
    worker other than the one that served (and is still writing) the list. The server is killed while
    they post: every engagement and event answered 201 is in the database."""
    url = database()
    server = serve(model_dir, url, tmp_path / "server.log")
    # The server is ready when its first worker is; a worker still starting when the 128 connections
    # open would get none of them, and the test would not show hops between all four.
    all_workers_answer(server)
    statuses: Counter[tuple[str, int]] = Counter()
    sent: set[tuple] = set()
    acked: dict[int, tuple] = {}  # engagement id -> (recset_id, user, item, action)
    acked_events: set[tuple] = set()
    hops: list[tuple[int, int]] = []  # (list connection, engagement connection) per acknowledged engagement
    cut: Counter[str] = Counter()  # requests in flight when the server died
    lock = threading.Lock()
    killing = threading.Event()

    def client(c: int) -> None:
        with (
            httpx.Client(base_url=server.url, timeout=30) as lists,
            httpx.Client(base_url=server.url, timeout=30) as posts,
        ):
            n = 0
            while not killing.is_set():
                n += 1
                user = f"load-{c}-{n}"  # a new user each time: its list never runs out of unseen items
                try:
                    shown = lists.get(f"/recommendations/{user}", params={"k": 3})
                    list_port = client_port(shown)  # now, while the connection is surely open
                    with lock:
                        statuses["list", shown.status_code] += 1
                    if shown.status_code != 200:
                        continue
                    items = shown.json()["items"]
                    item = items[n % len(items)]["item_id"]
                    engagement = (shown.json()["recset_id"], user, item, "click")
                    with lock:
                        sent.add(engagement)
                    body = dict(zip(("recset_id", "user_id", "item_id", "action_type"), engagement, strict=True))
                    r = posts.post("/events/engagement", json=body)
                    with lock:
                        statuses["engagement", r.status_code] += 1
                        if r.status_code == 201:
                            acked[r.json()["id"]] = engagement
                            hops.append((list_port, client_port(r)))
                    event = (user, item, "view", T0 + n)
                    e = posts.post(
                        "/events", json=[dict(zip(("user_id", "item_id", "event", "ts"), event, strict=True))]
                    )
                    with lock:
                        statuses["event", e.status_code] += 1
                        if e.status_code == 201:
                            acked_events.add(event)
                except (httpx.TransportError, OSError):  # OSError: a socket's address asked after the kill
                    if killing.is_set():
                        with lock:
                            cut["request"] += 1
                        return  # the server is gone: expected
                    raise

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(client, c) for c in range(CLIENTS)]
        try:
            time.sleep(LOAD_SECONDS)
            with lock:  # which worker holds each connection, while all are open
                worker = workers_of(server, {port for hop in hops for port in hop})
            log = full_log(server)
        finally:
            killing.set()  # from here on, a failed request is the kill, not a failure
            server.kill()  # the master and all 4 workers at once, requests in flight
        for f in futures:
            f.result()

    bad = {key: n for key, n in statuses.items() if key[1] not in (200, 201)}
    assert not bad, f"{bad} in {dict(statuses)}\n{log[-4000:]}"
    assert "Traceback" not in log, log[-4000:]
    assert cut["request"] > 0, "the kill should cut requests in flight"
    located = [(worker[a], worker[b]) for a, b in hops if a in worker and b in worker]
    assert len({w for hop in located for w in hop}) == WORKERS, "the clients' connections reach every worker"
    # 3 in 4 by chance when the connections spread evenly; a quarter is safe against an uneven spread.
    crossed = sum(a != b for a, b in located)
    assert crossed > len(located) / 4, f"only {crossed} of {len(located)} engagements reached another worker"

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            e = t.engagements.c
            stored = {
                r[0]: tuple(r[1:])
                for r in conn.execute(sa.select(e.id, e.recset_id, e.user_id, e.item_id, e.action_type))
            }
            v = t.events.c
            events = Counter(conn.execute(sa.select(v.user_id, v.item_id, v.event, v.ts)).tuples())
    finally:
        engine.dispose()
    lost = {i: row for i, row in acked.items() if stored.get(i) != row}
    assert not lost, (
        f"{len(lost)} of {len(acked)} acknowledged engagements are not in the database: {list(lost.items())[:5]}"
    )
    assert acked_events <= set(events), f"{len(acked_events - set(events))} acknowledged events lost"
    assert set(stored.values()) <= sent and len(set(stored.values())) == len(stored)  # none invented or doubled
    assert all(n == 1 for n in events.values())
    print(
        f"{sum(statuses.values())} requests {dict(statuses)}; {len(acked)} engagements acknowledged "
        f"({crossed} of {len(located)} located on another worker than the list), {len(stored)} stored; "
        f"{len(acked_events)} events acknowledged, {len(events)} stored; {cut['request']} requests cut by the kill"
    )


def test_engagements_and_reload_reach_every_worker(model_dir: Path, tmp_path: Path, database) -> None:
    """Lists shown by any worker take engagements at any other; one reload reaches every worker."""
    own_model = tmp_path / "model"
    shutil.copytree(model_dir, own_model)
    server = serve(own_model, database(), tmp_path / "server.log")
    try:
        all_workers_answer(server)
        engagements_and_reload(server, own_model)
    finally:
        server.stop()


def engagements_and_reload(server: LiveServer, model: Path) -> None:
    def versions() -> set[str]:
        """The versions 40 new connections see (each may land on any worker)."""
        return {httpx.get(server.url + "/ready", timeout=10).json()["model_version"] for _ in range(40)}

    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert versions() == {"test-v1"}

        def show_and_click(n: int) -> int:
            user = f"visitor-{n}"  # each clicks once: lists never run out of items
            shown = client.get(f"/recommendations/{user}", params={"k": 3}).json()
            item = shown["items"][0]["item_id"]
            body = {"recset_id": shown["recset_id"], "user_id": user, "item_id": item, "action_type": "click"}
            return client.post("/events/engagement", json=body).status_code

        with ThreadPoolExecutor(16) as pool:  # 16 connections, spread over the workers
            codes = list(pool.map(show_and_click, range(160)))
        assert codes.count(201) == 160, sorted(set(codes))  # none answered 404 by another worker

        write_model_dir(model, version="test-v2", scale=2.0)  # replaced in place, atomically
        assert client.post("/admin/reload").json()["model_version"] == "test-v2"
        deadline = time.monotonic() + 5.0
        while versions() != {"test-v2"}:
            assert time.monotonic() < deadline, "a worker still serves the old model after 5 s"
            time.sleep(0.1)
