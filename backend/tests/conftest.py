"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ml100k_dir() -> Path | None:
    """MovieLens 100K from ``ML100K_DIR`` or ``../shared/datasets/ml-100k``; None when neither exists."""
    candidates = [os.environ.get("ML100K_DIR"), str(ROOT.parent / "shared" / "datasets" / "ml-100k")]
    for c in candidates:
        if c and (Path(c) / "u.data").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def ml100k() -> Path:
    path = ml100k_dir()
    if path is None:
        pytest.skip("MovieLens 100K not found: set ML100K_DIR or put it at ../shared/datasets/ml-100k")
    return path


@pytest.fixture(autouse=True, scope="session")
def _test_clients_are_on_this_machine():
    """In-process test clients call from the loopback interface, as an operator on the machine would: admin
    and debug routes answer loopback clients while no admin key is set (``app.service.http.access``).
    Tests of remote clients pass ``client=`` themselves."""
    from starlette.testclient import TestClient

    original = TestClient.__init__

    def init(self, *args, client=("127.0.0.1", 50000), **kwargs):
        original(self, *args, client=client, **kwargs)

    TestClient.__init__ = init
    yield
    TestClient.__init__ = original
