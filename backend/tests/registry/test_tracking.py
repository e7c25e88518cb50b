"""MLflow mirroring (when installed and MLFLOW_TRACKING_URI is set) and the file-only path without it."""

from __future__ import annotations

import pytest

from app.registry.cli import main as registry_cli
from app.registry.gate import decide
from app.registry.tracking import metric_key, sync_if_enabled, track_retraining_run, tracking_status
from app.registry.versions import Registry


def test_without_tracking_uri_the_file_registry_works_alone(tmp_path, model_dir, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_status() == (False, "MLFLOW_TRACKING_URI is not set: file registry only")
    root = tmp_path / "reg"
    Registry(root).register(model_dir("v1"))
    assert registry_cli(["--registry-dir", str(root), "promote", "v1", "--to", "production"]) == 0
    assert "file registry only" in capsys.readouterr().out
    assert sync_if_enabled(Registry(root)).endswith("file registry only")
    assert metric_key("ndcg@10") == "ndcg_at_10"


def test_mlflow_run_model_version_and_stage_aliases(tmp_path, model_dir, monkeypatch, capsys):
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install -r requirements-mlflow.txt)")
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert tracking_status()[0]
    root = tmp_path / "reg"
    reg = Registry(root)
    metrics = {"ndcg@10": 0.2, "recall@20": 0.3}
    for version in ("v1", "v2"):
        reg.register(model_dir(version), stage="staging")
        decision = decide(metrics, None if version == "v1" else metrics, candidate_version=version)
        stage = "production" if decision.promote else "archived"
        if decision.promote:
            reg.promote(version, "production", reason=decision.reason)
        else:
            reg.archive(version, reason=decision.reason)
        evaluation = {"protocol": "leave-last-out", "models": {"candidate": {"metrics": metrics}}}
        out = track_retraining_run(
            reg,
            version,
            stage,
            params={"candidate": {"epochs": 1, "embedding_dim": 8}},
            evaluation=evaluation,
            data_summary={"events": 10},
            decision=decision.to_dict(),
        )
        assert out["enabled"] and out["model_version"] == {"v1": "1", "v2": "2"}[version], out

    client = MlflowClient()
    run = client.get_run(client.get_model_version("recommender", "1").run_id)
    assert run.data.params["candidate.epochs"] == "1" and run.data.metrics["candidate.ndcg_at_10"] == 0.2
    assert run.data.tags["registry_version"] == "v1" and run.data.tags["decision"] == "promote"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "decision.json", "data_summary.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} >= {
        "model/metadata.json",
        "model/arrays.npz",
    }

    def stage_of(mv: str) -> str:
        return client.get_model_version("recommender", mv).tags["stage"]

    def alias(name: str) -> str:
        return client.get_model_version_by_alias("recommender", name).tags["registry_version"]

    assert alias("production") == "v1" and (stage_of("1"), stage_of("2")) == ("production", "archived")
    # A CLI promotion moves the alias and the tags with it.
    assert registry_cli(["--registry-dir", str(root), "promote", "v2", "--to", "production"]) == 0
    assert "MLflow synced (2 model versions)" in capsys.readouterr().out
    assert alias("production") == "v2" and (stage_of("1"), stage_of("2")) == ("archived", "production")
    assert registry_cli(["--registry-dir", str(root), "rollback"]) == 0
    assert alias("production") == "v1" and (stage_of("1"), stage_of("2")) == ("production", "archived")
