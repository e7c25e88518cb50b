"""Distributed training: two local workers (scripts/train_multiworker.sh) against one process, and TF_CONFIG checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from app.model.distribution import SINGLE, parse_tf_config
from app.registry.train import main

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "train_multiworker.sh"
DATA = ROOT / "backend" / "data" / "interactions.jsonl"
# Small and fast (about 10 s for two workers on 2 cores), yet trained well past most-popular (NDCG@10 0.12)
FLAGS = [
    "--data-path",
    str(DATA),
    "--embedding-dim",
    "16",
    "--epochs",
    "10",
    "--batch-size",
    "1024",
    "--learning-rate",
    "0.05",
    "--ensemble",
    "1",
    "--pipeline",
    "nn",
]
#: Held-out NDCG@10 of the evaluation fit, two workers vs one process. Over seeds 42-47 with these flags
#: one process scored 0.192 +- 0.005 (sd) and two workers 0.193 +- 0.003: the workers draw their own
#: dropout and cut points, so the two runs differ like two seeds (sd of a difference about 0.007).
#: 0.02 is about 3 of those, and far below the 0.07 the model gains over most-popular.
NDCG_TOLERANCE = 0.02


def run_workers(tmp_path: Path, *flags: str, workers: int = 2) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return subprocess.run(
        [str(SCRIPT), "--workers", str(workers), "--log-dir", str(tmp_path / "logs"), "--", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    proc = run_workers(tmp_path, *FLAGS, "--model-dir", str(out / "model"))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Only the chief wrote: the model directory and nothing beside it (no temporary or stray directories)
    assert sorted(p.name for p in out.iterdir()) == ["model"]
    assert {p.name for p in (out / "model").iterdir()} == {"arrays.npz", "items.jsonl", "metadata.json", "model.keras"}
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]
    chief, other = ((tmp_path / "logs" / f"worker-{i}.log").read_text() for i in (0, 1))
    assert "wrote " in chief and "wrote " not in other
    assert "epoch" not in other and "the chief writes the model" in other  # the progress is the chief's alone
    # The workers' variables ended identical (the trainer also checks after every fit)
    weights = [re.findall(r"weights sha256 ([0-9a-f]{64})", log) for log in (chief, other)]
    assert len(weights[0]) == 1 and weights[0] == weights[1]

    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["training"]["distribution"] == {"strategy": "MultiWorkerMirroredStrategy", "workers": 2}

    # The same flags in one process (the default, no strategy)
    assert main([*FLAGS, "--model-dir", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    single = json.loads((tmp_path / "single" / "metadata.json").read_text())
    assert single["training"]["distribution"] == SINGLE == {"strategy": "none", "workers": 1}
    distributed, alone = meta["metrics"]["ndcg@10"], single["metrics"]["ndcg@10"]
    assert abs(distributed - alone) <= NDCG_TOLERANCE, (distributed, alone)
    assert distributed > meta["metrics"]["popular"]["ndcg@10"] + 0.03


def test_a_failing_worker_fails_the_run(tmp_path: Path) -> None:
    proc = run_workers(tmp_path, "--data-path", str(tmp_path / "missing.jsonl"), "--model-dir", str(tmp_path / "m"))
    assert proc.returncode != 0
    assert "failed" in proc.stderr and "missing.jsonl" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_multiworker_without_or_with_a_bad_tf_config_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    args = [*FLAGS, "--model-dir", str(tmp_path / "m"), "--distribute", "multiworker"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(args) == 2
    assert "needs the TF_CONFIG environment variable" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert main(args) == 2
    assert "TF_CONFIG is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[]", "must be a JSON object"),
        ('{"cluster": {"worker": ["a:1"]}}', "a 'task' object"),
        ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker"}}', "not ps"),
        ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker"}}', "list of 'host:port'"),
        ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker"}}', "same address twice"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}', "'chief' or 'worker'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "from 0 to 0"),
    ],
)
def test_tf_config_errors_say_what_is_wrong(config: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_tf_config(config)


def test_tf_config_ranks_the_chief_first() -> None:
    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"]}
    ranks = [
        parse_tf_config(json.dumps({"cluster": cluster, "task": {"type": t, "index": i}}))
        for t, i in (("chief", 0), ("worker", 0), ("worker", 1))
    ]
    assert [(c.rank, c.is_chief, c.workers) for c in ranks] == [(0, True, 3), (1, False, 3), (2, False, 3)]
    only_workers = parse_tf_config('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}')
    assert only_workers.is_chief and only_workers.workers == 2
