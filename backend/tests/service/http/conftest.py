"""HTTP tests over a real store: the store's fixtures (SQLite, and PostgreSQL when the machine has it), and a
minimal app with the logging routers (``store_client``); the recommendation routes use the hand-made model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.store import Store
from tests.store.conftest import db_url, make_app, postgres_url, store  # noqa: F401 - fixtures used here


@pytest.fixture
def store_client(store: Store) -> Iterator[TestClient]:  # noqa: F811 - ``store`` is the imported fixture
    with TestClient(make_app(store)) as c:
        yield c
