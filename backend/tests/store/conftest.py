"""Store fixtures: a fresh SQLite file per test, a throwaway PostgreSQL cluster when the server binaries
exist, a minimal app with the store's routers, and helpers to run the real service in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store import Store
from app.store import schema as t
from app.store.db import create_db_engine, create_schema
from tests.live_server import LiveServer, free_port

BACKEND = Path(__file__).resolve().parents[2]
PG_BIN_DIRS = (
    [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
    if Path("/usr/lib/postgresql").is_dir()
    else []
)


def _pg_bin(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        if (d / name).is_file():
            return str(d / name)
    return shutil.which(name)


class PostgresCluster:
    """``initdb`` + ``pg_ctl start`` in a temp dir on a free port (as user ``postgres`` when run as root)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.root = Path(tempfile.mkdtemp(prefix="store-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")  # KeyError -> skipped by the fixture
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else ["su", "postgres", "-c"]

    def _run(self, args: list[str]) -> None:
        cmd = self.as_user + args if self.as_user[:1] != ["su"] else [*self.as_user, " ".join(args)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> PostgresCluster:
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            [
                self.pg_ctl,
                "-D",
                str(self.data),
                "-o",
                f"'{opts}'" if self.as_user[:1] == ["su"] else opts,
                "-l",
                str(self.root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        return self

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]'")
    try:
        cluster = PostgresCluster().start()
    except (RuntimeError, KeyError, OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        reason = f"no PostgreSQL server for the tests: {exc} {detail.decode(errors='replace')[:300]}"
        if shutil.which("apt-get"):  # scripts/setup.sh --dev installs it here: a missing server is a failure
            pytest.fail(f"{reason}\nrun scripts/setup.sh --dev, which installs Debian's postgresql")
        pytest.skip(reason)  # only a machine without apt may skip the PostgreSQL runs
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _clear(url: str) -> None:
    engine = create_db_engine(url)
    try:
        t.metadata.create_all(engine)
        with engine.begin() as conn:
            for table in [*t.TABLES_CHILD_FIRST, t.schema_version]:
                conn.execute(table.delete())
        create_schema(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on SQLite and, when available, on PostgreSQL (tables emptied first)."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    url = request.getfixturevalue("postgres_url")
    _clear(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'store.db').as_posix()}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.from_url(db_url, batch_size=64, flush_seconds=0.05).start()
    try:
        yield s
    finally:
        s.close()


def make_app(store: Store, runtime: object | None = None):
    """A minimal app with the store's routers, error handlers and metrics (what ``create_app`` does)."""
    import importlib

    from fastapi import FastAPI

    from app.config import Settings
    from app.service.http import guards, monitoring
    from app.service.http.responses import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    monitoring.install(app)
    guards.install(app, Settings())
    for name in ("events", "metrics", "debug"):
        app.include_router(importlib.import_module(f"app.service.http.routes.{name}").router)
    app.state.store = store
    app.state.runtime = runtime
    return app


@pytest.fixture
def client(store: Store):
    from fastapi.testclient import TestClient

    with TestClient(make_app(store)) as c:
        yield c


def count_rows(url: str, table: sa.Table) -> int:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def service_process(tmp: Path, database_url: str) -> LiveServer:
    """The real service on ``database_url`` (not started); the logging endpoints need no model."""
    settings = {
        "DATABASE_URL": database_url,
        "RECOMMENDER_DATA_DIR": str(tmp),
        "RECOMMENDER_MODEL_DIR": str(tmp / "no-model"),
    }
    return LiveServer(settings, tmp / f"uvicorn-{free_port()}.log", ready_path="/debug/users?limit=1")
