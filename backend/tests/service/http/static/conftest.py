"""Browser-test fixtures for the web page (``app/service/http/static``): a live uvicorn on loopback with a fresh database, and headless Chromium.

The server runs the real app (``app.service.api:app``) on the shipped model ``backend/models/latest``
(or, when it has not been trained yet, a small model trained here on generated sample data). Each
test gets a fresh browser page whose console errors and page errors fail the test unless the test
says it expects network failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[5]
BACKEND = ROOT / "backend"
SHIPPED_MODEL = BACKEND / "models" / "latest"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config, items):
    """Skip every browser test with one clear reason when Playwright or Chromium is missing."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if reason is None and not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    if reason is None:
        return
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def _env() -> dict[str, str]:
    # The test server's settings come from here only, not from whatever the shell had.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_") and k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(BACKEND), OPENBLAS_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The shipped model, or a small one trained on generated sample data when it is not there yet."""
    if (SHIPPED_MODEL / "metadata.json").is_file():
        return SHIPPED_MODEL
    work = tmp_path_factory.mktemp("web-model")
    data = work / "data"
    subprocess.run(
        [sys.executable, "-m", "app.data.sample", "--out", str(data), "--users", "150", "--items", "120"],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
    )
    out = work / "model"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.registry.train",
            "--data-path",
            str(data / "interactions.jsonl"),
            "--items-path",
            str(data / "items.jsonl"),
            "--model-dir",
            str(out),
            "--epochs",
            "2",
        ],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"training the test model failed:\n{proc.stderr[-3000:]}")
    return out


def page_server(model_dir: Path, data_dir: Path) -> LiveServer:
    """The real service on ``model_dir`` with a fresh database in ``data_dir`` (not started)."""
    settings = {
        "RECOMMENDER_MODEL_DIR": str(model_dir),
        "RECOMMENDER_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{(data_dir / 'web-test.db').as_posix()}",
    }
    return LiveServer(settings, data_dir / "server.log")


@pytest.fixture(scope="session")
def server(model_dir, tmp_path_factory):
    srv = page_server(model_dir, tmp_path_factory.mktemp("web-server")).start()
    yield srv
    srv.stop()


@pytest.fixture()
def own_server(model_dir, tmp_path):
    """A server this test may stop (the API-down state)."""
    srv = page_server(model_dir, tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def api(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class ConsoleLog:
    """Console errors and uncaught page errors of one page.

    A test that stops the API on purpose sets ``expect_network_errors``: Chromium then logs each
    refused request ("Failed to load resource"), which is allowed; any other error still fails.
    """

    def __init__(self):
        self.errors: list[str] = []
        self.page_errors: list[str] = []
        self.expect_network_errors = False

    def check(self) -> None:
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"
        errors = self.errors
        if self.expect_network_errors:
            errors = [e for e in errors if "Failed to load resource" not in e]
        assert errors == [], f"console errors: {errors}"

    def attach(self, page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))


def _new_page(browser, viewport, console: ConsoleLog):
    context = browser.new_context(viewport=viewport, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(10_000)
    console.attach(page)
    return context, page


@pytest.fixture()
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture()
def page(browser, console):
    """A desktop-sized page; any console error or uncaught page error fails the test."""
    context, pg = _new_page(browser, DESKTOP, console)
    yield pg
    context.close()
    console.check()


@pytest.fixture()
def phone_page(browser, console):
    """A phone-sized page (390 x 844), same checks."""
    context, pg = _new_page(browser, PHONE, console)
    yield pg
    context.close()
    console.check()


@pytest.fixture(scope="session")
def snap():
    """``snap(page, name)``: full-page screenshot to artifacts/screenshots/<name>.png (for people to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.wait_for_timeout(150)  # let the card hover/skeleton transitions settle
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
