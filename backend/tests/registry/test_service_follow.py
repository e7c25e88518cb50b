"""The running service follows the registry's production pointer on /admin/reload, without a restart."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.config import Settings
from app.registry.cli import main as registry_cli
from app.registry.versions import Registry


def test_service_serves_production_and_follows_promotion_and_rollback(tmp_path, model_dir, monkeypatch, capsys):
    from app.service.http.app import create_app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    reg = Registry(root)
    reg.register(model_dir("v1"))
    reg.register(model_dir("v2", seed=1))
    reg.promote("v1", "production", reason="first")
    monkeypatch.setenv("RECOMMENDER_REGISTRY_DIR", str(root))
    settings = Settings(data_dir=tmp_path / "data", model_dir=tmp_path / "no-model-here")
    assert settings.registry_dir == root
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["model_version"] == "v1"
        assert (
            registry_cli(["--registry-dir", str(root), "promote", "v2", "--to", "production", "--reason", "test"]) == 0
        )
        assert client.get("/health").json()["model_version"] == "v1"  # nothing changes until the reload
        listing = client.get("/models").json()
        assert listing["production"] == "v2" and listing["serving"]["version"] == "v1"
        reload = client.post("/admin/reload")
        assert reload.status_code == 200, reload.text
        assert reload.json()["model_version"] == "v2" and reload.json()["previous_version"] == "v1"
        assert client.get("/health").json()["model_version"] == "v2"
        assert client.get("/models").json()["serving"]["version"] == "v2"
        recs = client.get("/recommendations/u1", params={"limit": 2})  # answers from the new version
        assert recs.status_code == 200, recs.text
        assert recs.json()["model_version"] == "v2"

        assert registry_cli(["--registry-dir", str(root), "rollback", "--reason", "test rollback"]) == 0
        assert client.post("/admin/reload").json()["model_version"] == "v1"
        assert client.get("/models/v2").json()["stage"] == "archived"
    capsys.readouterr()


def _corrupt(model) -> None:
    (model / "arrays.npz").write_bytes(b"\x00random bytes, not the model's arrays")


def test_a_version_whose_files_broke_is_never_promoted(tmp_path, model_dir):
    """Random bytes in arrays.npz: the registry used to promote it, and the service had no model after a restart."""
    import pytest

    from app.registry.state import RegistryError

    reg = Registry(tmp_path / "reg")
    reg.register(model_dir("v1"))
    reg.register(model_dir("v2", seed=1))
    reg.promote("v1", "production")
    _corrupt(reg.version_dir("v2"))
    with pytest.raises(RegistryError, match="not promoting v2: a model the service cannot load"):
        reg.promote("v2", "production")
    assert reg.production() == "v1"


def test_the_service_starts_on_the_last_good_version_and_says_so(tmp_path, model_dir, monkeypatch):
    from app.service.http.app import create_app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    reg = Registry(root)
    reg.register(model_dir("v1"))
    reg.register(model_dir("v2", seed=1))
    reg.promote("v1", "production")
    reg.promote("v2", "production")
    _corrupt(reg.version_dir("v2"))  # broken after its promotion (a disk fault, a bad copy)
    settings = Settings(data_dir=tmp_path / "data", model_dir=tmp_path / "no-model-here", registry_dir=root)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["model_version"] == "v1"
        assert "cannot be loaded" in ready.json()["warning"] and "v1" in ready.json()["warning"]
        assert client.get("/recommendations/u1", params={"k": 2}).status_code == 200
