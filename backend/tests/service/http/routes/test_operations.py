"""Liveness, readiness and hot reload (good model, broken model, no model, polling)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.service.core import strategies
from app.service.http.app import create_app
from tests.service.conftest import make_settings
from tests.service.modeldir import write_model_dir


def test_health_and_ready(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_loaded": True, "model_version": "test-v1", "users": 7, "items": 12}
    r = client.get("/ready")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ready" and body["model_version"] == "test-v1"
    assert body["users"] == 7 and body["items"] == 12 and "trained_at" in body
    assert body["genres"] == ["Action", "Comedy", "Drama"]


def test_reload_swaps_in_a_good_model_and_keeps_the_old_one_for_a_broken_one(own_model_dir: Path, tmp_path: Path):
    app = create_app(make_settings(own_model_dir, tmp_path))
    with TestClient(app) as c:
        old_runtime = app.state.runtime
        assert c.get("/recommendations/u1").json()["model_version"] == "test-v1"

        write_model_dir(own_model_dir, version="test-v2", scale=2.0)
        r = c.post("/admin/reload")
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "test-v2" and r.json()["previous_version"] == "test-v1"
        assert r.json()["changed"] is True
        body = c.get("/recommendations/u1", params={"limit": 1}).json()
        assert body["model_version"] == "test-v2"
        assert body["items"][0]["score"] == pytest.approx(
            0.76 * 4 + 0.002, abs=1e-5
        )  # factors doubled: 4x the dot product
        # A request that took the old runtime before the swap finishes on it, unchanged.
        assert old_runtime.version == "test-v1"
        assert strategies.recommend(old_runtime, "u1", 1).items[0]["item_id"] == "a3"

        # Break the directory: the hashes no longer match.
        (own_model_dir / "arrays.npz").write_bytes(b"not an npz file")
        r = c.post("/admin/reload")
        assert r.status_code == 409
        assert "test-v2" in r.json()["detail"] and r.json()["serving_version"] == "test-v2"
        assert c.get("/recommendations/u1").json()["model_version"] == "test-v2"
        assert c.get("/ready").json()["model_version"] == "test-v2"

        shutil.rmtree(own_model_dir)
        r = c.post("/admin/reload")
        assert r.status_code == 409 and str(own_model_dir) in r.json()["detail"]
        assert c.get("/recommendations/u1").status_code == 200


def test_service_starts_without_a_model_and_a_reload_fixes_it(tmp_path: Path):
    model_dir = tmp_path / "missing"
    app = create_app(make_settings(model_dir, tmp_path))
    with TestClient(app) as c:
        assert c.get("/health").json()["model_loaded"] is False
        r = c.get("/ready")
        assert r.status_code == 503 and r.json()["status"] == "not_ready" and r.json()["detail"]
        r = c.get("/recommendations/u1")
        assert r.status_code == 503 and "no model loaded" in r.json()["detail"]
        assert c.post("/admin/reload").status_code == 503
        write_model_dir(model_dir, version="late")
        r = c.post("/admin/reload")
        assert r.status_code == 200 and r.json()["previous_version"] is None
        assert c.get("/recommendations/u1").json()["model_version"] == "late"


def test_polling_picks_up_a_new_model(own_model_dir: Path, tmp_path: Path):
    app = create_app(make_settings(own_model_dir, tmp_path, model_poll_seconds=0.05))
    with TestClient(app) as c:
        assert c.get("/ready").json()["model_version"] == "test-v1"
        write_model_dir(own_model_dir, version="test-v3")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.get("/ready").json()["model_version"] != "test-v3":
            time.sleep(0.05)
        assert c.get("/ready").json()["model_version"] == "test-v3"


def test_registry_production_version_is_served_and_followed_on_reload(model_dir: Path, tmp_path: Path):
    from app.registry.versions import Registry

    registry = Registry(tmp_path / "registry")
    v1 = registry.register(model_dir)
    registry.promote(v1, "production")
    app = create_app(make_settings(tmp_path / "not-used", tmp_path, registry_dir=tmp_path / "registry"))
    with TestClient(app) as c:
        assert c.get("/ready").json()["model_version"] == "test-v1"
        v2 = registry.register(write_model_dir(tmp_path / "candidate", version="test-v2", scale=2.0))
        registry.promote(v2, "production")
        assert c.get("/ready").json()["model_version"] == "test-v1"  # until reloaded
        r = c.post("/admin/reload")
        assert r.status_code == 200 and r.json()["model_version"] == "test-v2"
        assert r.json()["model_dir"] == str(registry.version_dir("test-v2"))
        registry.rollback()
        assert c.post("/admin/reload").json()["model_version"] == "test-v1"
