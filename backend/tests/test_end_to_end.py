"""The whole pipeline as a user runs it: ingest a JSONL log (with a bad line), train a tiny model with
the CLI, serve it, show a list, report an engagement, and read it back in PaC and the debug views."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from app.config import Settings
from app.data.sample import generate
from app.service.http.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_train_serve_log(tmp_path: Path) -> None:
    interactions, items = generate(n_users=120, n_items=80, seed=3)
    log = tmp_path / "interactions.jsonl"
    log.write_bytes(interactions + b'{"user_id": "u1", "item_id": "i1", "event": "view"}\n')  # no ts: rejected
    (tmp_path / "items.jsonl").write_bytes(items)
    model_dir = tmp_path / "model"

    cmd = [
        sys.executable,
        "-m",
        "app.registry.train",
        "--data-path",
        str(log),
        "--items-path",
        str(tmp_path / "items.jsonl"),
        "--model-dir",
        str(model_dir),
        "--epochs",
        "3",
        "--ensemble",
        "1",
        "--embedding-dim",
        "16",
        "--rejects-path",
        str(tmp_path / "rejects.jsonl"),
        "--version",
        "e2e-v1",
    ]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "backend"), "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rejects = [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert len(rejects) == 1 and rejects[0]["line"] == interactions.count(b"\n") + 1
    assert {"model.keras", "metadata.json", "arrays.npz", "items.jsonl"} <= {p.name for p in model_dir.iterdir()}

    settings = Settings(model_dir=model_dir, data_dir=tmp_path, impression_flush_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready").json()
        assert ready["model_version"] == "e2e-v1" and ready["engines"]["hybrid"] in ("ready", "fitted on first use")
        user = orjson.loads(interactions.splitlines()[0])["user_id"]
        rec = client.get(f"/recommendations/{user}", params={"limit": 5}).json()
        # auto serves what training found better on validation: the hybrid engine or the embedding model
        engine = ready["auto_engine"]
        assert rec["engine"] == engine and rec["fallback_used"] is False and len(rec["items"]) == 5
        seen = {
            orjson.loads(line)["item_id"] for line in interactions.splitlines() if orjson.loads(line)["user_id"] == user
        }
        assert not seen & {it["item_id"] for it in rec["items"]}

        unknown = client.get("/recommendations/nobody-yet", params={"limit": 5}).json()
        assert unknown["fallback_used"] is True and len(unknown["items"]) == 5

        liked = rec["items"][0]["item_id"]
        resp = client.post(
            "/events/engagement",
            json={
                "recset_id": rec["recset_id"],
                "user_id": user,
                "item_id": liked,
                "action_type": "like",
                "platform": "web",
            },
        )
        assert resp.status_code in (200, 201), resp.text
        rows = client.get("/debug/engagements", params={"recset_id": rec["recset_id"]}).json()["rows"]
        assert [r["item_id"] for r in rows] == [liked]

        pac = client.get("/metrics/pac", params={"k": 5, "engine": engine, "window_hours": 24}).json()
        assert pac["impressions"] == 1 and pac["total_hits"] == 1 and abs(pac["pac_mean"] - 1 / 5) < 1e-9
