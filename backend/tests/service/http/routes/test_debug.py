"""The paginated ``/debug`` views of the database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.store import Store
from tests.store import scenario as sc
from tests.store.scenario import RECSETS

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: tests/store


def test_debug_views_paginate(store_client: TestClient, store: Store) -> None:
    sc.load(store)
    users = store_client.get("/debug/users", params={"limit": 2, "offset": 1}).json()
    assert users["total"] == 4 and [u["user_id"] for u in users["rows"]] == ["u2", "u3"]
    assert store_client.get("/debug/users", params={"source": "online"}).json()["total"] == 2  # u3, u5 from events
    assert store_client.get("/debug/items").json()["total"] == 10
    assert store_client.get("/debug/interactions", params={"user_id": "u1"}).json()["total"] == 2
    imps = store_client.get("/debug/impressions", params={"user_id": "u1"}).json()
    assert [r["recset_id"] for r in imps["rows"]] == [RECSETS["D"], RECSETS["A"]]  # newest first
    eng = store_client.get("/debug/engagements", params={"recset_id": RECSETS["A"], "limit": 4}).json()
    assert eng["total"] == 6 and len(eng["rows"]) == 4
    assert store_client.get("/debug/events", params={"user_id": "u3"}).json()["total"] == 2
    model = store_client.get("/debug/model").json()
    assert model["model"] is None and model["store"]["tables"]["engagements"] == 10
