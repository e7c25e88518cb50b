"""``python -m app.registry``: list, show, register, promote, rollback, archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

import app.registry.cli as cli
from app.config import Settings
from app.registry.cli import main
from app.registry.versions import Registry

BACKEND = Path(__file__).resolve().parents[2]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lifecycle(tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = str(tmp_path / "reg")
    assert run(capsys, "--registry-dir", root, "register", str(model_dir("v1")))[0] == 0
    assert run(capsys, "--registry-dir", root, "register", str(model_dir("v2", ndcg=0.2)), "--stage", "staging")[0] == 0
    code, out, _ = run(
        capsys, "--registry-dir", root, "promote", "v1", "--to", "production", "--reason", "first", "--actor", "alice"
    )
    assert code == 0 and "v1 -> production" in out and "MLFLOW_TRACKING_URI is not set" in out
    code, out, _ = run(capsys, "--registry-dir", root, "promote", "#2", "--to", "production")
    assert code == 0 and "v2 -> production" in out
    code, out, _ = run(capsys, "--registry-dir", root, "list")
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["1", "v1", "archived"]
    assert lines[2].split()[:3] == ["2*", "v2", "production"]
    # never evaluated by a retraining run: no gate figure (the training CLI's own figure is not shown beside gate ones)
    assert lines[2].split()[5:] == ["-", "not", "gated", "(no", "retraining", "run", "has", "evaluated", "it)"]
    code, out, _ = run(capsys, "--registry-dir", root, "rollback", "--reason", "bad CTR")
    assert code == 0 and "v2 (archived) -> v1" in out
    code, out, _ = run(capsys, "--registry-dir", root, "show", "v1")
    info = orjson.loads(out)
    assert info["stage"] == "production" and info["metadata"]["version"] == "v1"
    assert [(e["to"], e["actor"]) for e in info["audit"]] == [
        ("none", info["audit"][0]["actor"]),
        ("production", "alice"),
        ("archived", info["audit"][2]["actor"]),
        ("production", info["audit"][3]["actor"]),
    ]
    assert info["audit"][-1]["reason"] == "bad CTR"
    code, out, _ = run(capsys, "--registry-dir", root, "list", "--json")
    assert [r["stage"] for r in orjson.loads(out)] == ["production", "archived"]
    assert Registry(root).production() == "v1"


def test_cli_errors_are_clear(tmp_path, model_dir, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = str(tmp_path / "reg")
    code, _, err = run(capsys, "--registry-dir", root, "promote", "nope", "--to", "production")
    assert code == 1 and "unknown model version 'nope'" in err
    code, _, err = run(capsys, "--registry-dir", root, "rollback")
    assert code == 1 and "no version is in production" in err
    code, out, _ = run(capsys, "--registry-dir", root, "list")
    assert "(no versions registered)" in out


def test_cli_runs_as_a_module_and_uses_the_setting(tmp_path, model_dir):
    env = {**os.environ, "PYTHONPATH": str(BACKEND), "RECOMMENDER_REGISTRY_DIR": str(tmp_path / "reg")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "app.registry", "register", str(model_dir("v1"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert Registry(tmp_path / "reg").versions()[0]["version"] == "v1"


def test_cli_without_a_registry_dir_says_how_to_set_one(monkeypatch, capsys):
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(registry_dir=None))
    code, _, err = run(capsys, "list")
    assert code == 2 and "RECOMMENDER_REGISTRY_DIR" in err
