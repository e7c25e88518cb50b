"""Writes must be JSON and come from this service's page or an allowed origin; CORS for allowed origins."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.service.http.app import create_app
from tests.service.conftest import make_settings

EVENT = {"user_id": "u1", "item_id": "a1", "event": "view", "ts": int(time.time())}


def test_a_cross_site_form_or_text_body_is_refused(client: TestClient) -> None:
    """``text/plain`` and form bodies are what any page elsewhere can post without asking: they were accepted."""
    plain = client.post("/events", content=b'{"user_id": "u1"}', headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["detail"]
    form = client.post("/events/engagement", data={"recset_id": "x"})
    assert form.status_code == 415
    assert client.post("/admin/reload", data={"a": "b"}).status_code == 415
    assert client.post("/admin/reload").status_code == 200  # no body: nothing to check
    assert client.post("/events", json=[EVENT]).status_code == 201


def test_a_write_from_another_sites_page_is_refused_and_this_services_page_is_not(client: TestClient) -> None:
    evil = client.post("/events", json=[EVENT], headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "RECOMMENDER_CORS_ORIGINS" in evil.json()["detail"]
    assert client.post("/events", json=[EVENT], headers={"Origin": "null"}).status_code == 403
    own = client.post("/events", json=[EVENT], headers={"Origin": "http://testserver"})  # the page itself
    assert own.status_code == 201
    assert client.get("/popular", headers={"Origin": "https://evil.example"}).status_code == 200  # reads: CORS decides


def test_allowed_origins_get_cors_and_their_writes_are_accepted(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, tmp_path, cors_origins="https://app.example, https://m.example")
    with TestClient(create_app(settings)) as client:
        pre = client.options(
            "/events",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        r = client.post("/events", json=[EVENT], headers={"Origin": "https://m.example"})
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == "https://m.example"
        assert client.post("/events", json=[EVENT], headers={"Origin": "https://evil.example"}).status_code == 403
