"""Several uvicorn workers on one database behave like one: they start together on a new database, take
engagements for lists any of them served, and all reload when one is asked to (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import time
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

WORKERS = 4


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


def test_many_workers_on_one_new_database(model_dir: Path, tmp_path: Path, database) -> None:
    own_model = tmp_path / "model"
    shutil.copytree(model_dir, own_model)
    for start in range(2):  # every start on a database no worker has seen: the schema is created once
        server = serve(own_model, database(), tmp_path / f"start-{start}" / "server.log")
        try:
            time.sleep(1.0)  # every worker through its start-up
            assert server.proc.poll() is None, server.read_log()
            assert "Traceback" not in server.read_log() and "already exists" not in server.read_log()
            if start == 1:
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
