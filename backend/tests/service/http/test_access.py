"""API keys: admin routes need the admin key (loopback only without one), client routes the client key when set."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.service.http.access import is_loopback
from app.service.http.app import create_app
from tests.service.conftest import make_settings

REMOTE = ("203.0.113.7", 40000)  # a client on the network (TEST-NET-3)


@pytest.fixture
def serve(model_dir: Path, tmp_path: Path):
    def make(client=REMOTE, **settings) -> TestClient:
        return TestClient(create_app(make_settings(model_dir, tmp_path, **settings)), client=client)

    return make


def test_without_an_admin_key_admin_routes_answer_only_this_machine(serve) -> None:
    """Every /debug view (every user's history) and /admin/reload used to be open to anyone."""
    with serve() as remote:
        for method, path in (
            ("get", "/debug/users"),
            ("post", "/admin/reload"),
            ("get", "/metrics"),
            ("get", "/models"),
        ):
            r = getattr(remote, method)(path)
            assert r.status_code == 403 and "RECOMMENDER_ADMIN_KEY" in r.json()["detail"], path
        assert remote.get("/recommendations/u1", params={"k": 2}).status_code == 200  # client routes: open
        assert remote.get("/health").status_code == 200
    with serve(client=("127.0.0.1", 1)) as local:
        assert local.get("/debug/users").status_code == 200


def test_the_admin_key_opens_admin_routes_from_anywhere(serve) -> None:
    with serve(admin_key="s3cret-admin") as remote:
        missing = remote.get("/debug/users")
        assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
        assert remote.get("/debug/users", headers={"X-API-Key": "wrong"}).status_code == 403
        assert remote.get("/debug/users", headers={"X-API-Key": "s3cret-admin"}).status_code == 200
        assert remote.get("/metrics", headers={"Authorization": "Bearer s3cret-admin"}).status_code == 200  # Prometheus
    with serve(client=("127.0.0.1", 1), admin_key="s3cret-admin") as local:
        assert local.get("/debug/users").status_code == 401  # with a key set, loopback needs it too


def test_the_client_key_guards_recommendations_and_events(serve) -> None:
    with serve(api_key="client-key", admin_key="admin-key") as remote:
        r = remote.get("/recommendations/u1", params={"k": 2})
        assert r.status_code == 401 and "RECOMMENDER_API_KEY" in r.json()["detail"]
        assert remote.post("/events", json=[]).status_code == 401
        ok = {"X-API-Key": "client-key"}
        assert remote.get("/recommendations/u1", params={"k": 2}, headers=ok).status_code == 200
        assert remote.get("/popular", headers={"X-API-Key": "admin-key"}).status_code == 200  # the admin key works too
        assert remote.get("/debug/users", headers=ok).status_code == 403  # the client key is not an admin key
        for open_path in ("/health", "/ready", "/", "/static/app.js", "/openapi.json"):
            assert remote.get(open_path).status_code == 200, open_path


def test_loopback_is_the_loopback_interface_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.0.1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.1") and not is_loopback("testclient") and not is_loopback(None)


def test_retraining_sends_the_admin_key_with_its_reload(monkeypatch) -> None:
    import httpx

    from app.registry import notify

    sent = {}

    def post(url, timeout, headers):
        sent.update(url=url, headers=headers)
        return httpx.Response(200, json={"reloaded": True})

    monkeypatch.setattr(notify.httpx, "post", post)
    assert notify.reload_service("http://127.0.0.1:8000/", admin_key="k1")["ok"] is True
    assert sent == {"url": "http://127.0.0.1:8000/admin/reload", "headers": {"X-API-Key": "k1"}}
