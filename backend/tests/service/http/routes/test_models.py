"""``GET /models`` and ``GET /models/{version}`` on a bare app holding only this router."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.registry.versions import Registry
from app.service.http.routes.models import router
from tests.registry.helpers import write_model_dir


def client_for(registry_dir) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    app.state.settings = Settings(registry_dir=registry_dir)
    return TestClient(app)


def test_models_endpoints(tmp_path):
    reg = Registry(tmp_path / "reg")
    reg.register(write_model_dir(tmp_path / "trained" / "v1", "v1", ndcg=0.11))
    reg.register(write_model_dir(tmp_path / "trained" / "v2", "v2", ndcg=0.12))
    reg.promote("v2", "production", reason="better")
    client = client_for(tmp_path / "reg")
    body = client.get("/models").json()
    assert body["production"] == "v2"
    assert [(m["version"], m["stage"], m["metrics"]["ndcg@10"]) for m in body["models"]] == [
        ("v1", "none", 0.11),
        ("v2", "production", 0.12),
    ]
    assert body["models"][0]["data_summary"] == {"interactions": 10, "users": 3, "items": 4}
    one = client.get("/models/v2").json()
    assert one["stage"] == "production" and one["metrics"] == {"ndcg@10": 0.12}
    assert one["metadata"]["user_ids"] == 3 and one["metadata"]["hyperparameters"]["embedding_dim"] == 4
    assert [a["to"] for a in one["audit"]] == ["none", "production"]
    assert client.get("/models/2").json()["version"] == "v2"  # registration number works too
    missing = client.get("/models/v9")
    assert missing.status_code == 404 and "unknown model version 'v9'" in missing.json()["detail"]
    assert client.get("/models/..%2Fetc").status_code == 404


def test_models_without_a_registry(tmp_path):
    client = client_for(None)
    body = client.get("/models").json()
    assert body["models"] == [] and "RECOMMENDER_REGISTRY_DIR" in body["detail"]
    assert client.get("/models/v1").status_code == 404
    assert client_for(tmp_path / "empty").get("/models").json()["models"] == []
