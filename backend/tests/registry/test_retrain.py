"""``python -m app.registry.retrain``: flag handling and its errors (no training here), run as a module too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import app.registry.retrain as retrain
from app.config import Settings
from app.registry.retrain import _params, main

BACKEND = Path(__file__).resolve().parents[2]


def test_params_are_json_or_plain_strings():
    assert _params(["epochs=5", "loss=softmax", "l2=1e-4", "user_embedding=false"]) == {
        "epochs": 5,
        "loss": "softmax",
        "l2": 1e-4,
        "user_embedding": False,
    }


def test_bad_flags_and_missing_paths_say_what_to_give(monkeypatch, capsys):
    assert main(["--param", "epochs"]) == 2
    assert "--param 'epochs': use KEY=VALUE" in capsys.readouterr().err
    monkeypatch.setattr(retrain, "get_settings", lambda: Settings(registry_dir=None))
    assert main(["--data-path", "base.jsonl"]) == 2
    assert "give --registry-dir (or RECOMMENDER_REGISTRY_DIR) and --data-path" in capsys.readouterr().err


def test_the_module_runs_the_command(tmp_path):
    """``python -m app.registry.retrain`` runs the command, which loads the pipeline once (and no other CLI)."""
    env = {**os.environ, "PYTHONPATH": str(BACKEND), "RECOMMENDER_REGISTRY_DIR": str(tmp_path / "reg")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.registry.retrain", "--param", "epochs"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "use KEY=VALUE" in proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert imported.count("app.registry.pipeline") == 1 and "app.registry.retrain" not in imported
    assert "app.registry.cli" not in imported
