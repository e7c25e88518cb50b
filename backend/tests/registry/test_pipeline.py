"""An end-to-end retraining run on tiny synthetic data: first model promoted, then a gated candidate
with new logs and stored service events, then a run with nothing new."""

from __future__ import annotations

import orjson
import pytest

import app.registry.pipeline as retrain
from app.config import Settings
from app.model.artifacts import load_bundle
from app.registry.gate import decide
from app.registry.pipeline import RetrainError, RetrainOptions, run_lock, run_once
from app.registry.run_report import format_record
from app.registry.state import production_model_dir
from app.registry.versions import Registry
from app.store import Store
from tests.registry.helpers import synthetic_items, synthetic_log, write_jsonl

TINY = {"epochs": 1, "embedding_dim": 8, "batch_size": 256, "num_negatives": 5}


@pytest.fixture
def data(tmp_path):
    base = write_jsonl(tmp_path / "base.jsonl", synthetic_log())
    items = write_jsonl(tmp_path / "items.jsonl", synthetic_items())
    new_rows = synthetic_log(n_users=20, per_user=2, seed=1, day0=10)  # 40 events of known users
    new_rows += [
        {"user_id": u, "item_id": i, "event": "watch", "ts": 1_701_000_000 + k}
        for k, (u, i) in enumerate(
            [("u100", "i0"), ("u100", "i3"), ("u100", "i99"), ("u101", "i1"), ("u101", "i4"), ("u101", "i99")]
        )
    ]
    new = write_jsonl(
        tmp_path / "new" / "day10.jsonl", [*new_rows, b'{"user_id": "u1", "item_id": "i1", "event": "play"']
    )
    return {"base": base, "items": items, "new": new}


def test_retraining_runs_end_to_end(tmp_path, data, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reloads = []
    monkeypatch.setattr(retrain, "reload_service", lambda url: reloads.append(url) or {"ok": True, "status": 200})
    root = tmp_path / "registry"
    common = dict(
        registry_dir=root,
        data_paths=[data["base"]],
        items_path=data["items"],
        train_params=TINY,
        baselines=("popular", "itemknn"),
        service_url="http://service:8000",
        n_boot=50,
    )

    # 1. No production model: the candidate is promoted and the service told to reload.
    first = run_once(RetrainOptions(**common, settings=Settings()))
    v1 = first["candidate"]
    assert first["decision"] == "promote" and first["stage"] == "production" and reloads == ["http://service:8000"]
    assert production_model_dir(root) == root / "versions" / v1
    bundle = load_bundle(root / "versions" / v1)
    assert (bundle.history.nnz, len(bundle.users), len(bundle.items)) == (320, 40, 30)  # history = all positives
    assert {"ndcg@10", "hitrate@10", "loss", "popular"} <= set(bundle.metadata["metrics"])
    evaluation = orjson.loads((root / "versions" / v1 / "evaluation.json").read_bytes())
    assert evaluation["production"] == {"version": None, "error": None, "method": "first-model"}
    fit = bundle.metadata["data_summary"]["fit"]
    assert fit["part"] == "train" and fit["protocol"] == "leave-last-out" and fit["positives"] == 320 - 80
    assert fit["heldout_rows"] == 80 and (root / "versions" / v1 / "heldout.npz").is_file()
    assert set(evaluation["models"]) == {"candidate", "popular", "itemknn"}
    assert evaluation["evaluated_users"] == 40 == evaluation["split"]["evaluated_users_validation"]

    # 2. New logs + events stored by the service; a gate that cannot be passed (needs +1000%) keeps production.
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with Store.from_url(url) as store:
        store.start()
        store.record_events(
            [
                ("u102", "i2", "like", 1_701_100_000, None, None, "ios"),
                ("u102", "i5", "play", 1_701_100_100, None, None, "ios"),
                ("u5", "i2", "rating", 1_701_100_200, 5.0, None, None),
            ]
        )
    strict = Settings(promotion_min_improvement=10.0)
    second = run_once(
        RetrainOptions(**common, new_logs=[tmp_path / "new"], database_url=url, settings=strict, min_gate_users=5)
    )
    new = second["data"]["new"]
    assert (new["events"], new["users"], new["items"], new["rejected"]) == (49, 3, 1, 1)  # u100-u102; i99
    assert new["items_not_in_catalogue"] == 1 and new["reasons"] == {"invalid_json": 1}
    assert second["data"]["events"] == 320 + 49
    v2 = second["candidate"]
    assert second["decision"] == "keep" and second["stage"] == "archived" and reloads == ["http://service:8000"]
    assert Registry(root).production() == v1
    ev2 = orjson.loads((root / "versions" / v2 / "evaluation.json").read_bytes())
    assert ev2["production"]["version"] == v1
    # 33 of the 40 new log events replay pairs the users already had: those pairs' latest time moves, so some
    # become validation rows that production (fitted on its split's train part) was fitted on. The gate
    # judges every model on the users whose validation rows production never saw.
    c = ev2["comparison"]
    assert c["method"] == "unseen-users" == ev2["production"]["method"] and c["overlap_rows"] > 0
    assert c["unseen_users"] == ev2["evaluated_users"] == ev2["candidate"]["n_users"] >= 5
    assert c["unseen_users"] + c["users_with_overlap"] == c["evaluated_users"]
    assert new["online_events"] == 3 and new["online_engagements"] == 0 and new["from_logs"] == 46
    assert second["data"]["online_through"] == {"events": 3, "engagements": 0}
    assert [r["table"] for r in second["data"]["database_rows"]] == ["events"]
    assert ev2["production"]["n_users"] == ev2["candidate"]["n_users"]  # the same users, the same split
    assert ev2["production"]["mapping"]["items_known"] == 30 and ev2["production"]["mapping"]["items"] == 31
    recorded = orjson.loads((root / "versions" / v2 / "decision.json").read_bytes())
    again = decide(ev2["candidate"]["metrics"], ev2["production"]["metrics"], min_improvement=10.0, max_regression=0.05)
    assert recorded["decision"] == again.decision == "keep"
    assert [r["rule"] for r in recorded["rules"]] == ["primary_improvement", "no_secondary_regression"]
    assert {m["metric"] for m in recorded["metrics"]} >= {"ndcg@10", "recall@20", "mrr", "coverage@100"}
    assert "## Gate (validation split)" in (root / "versions" / v2 / "report.md").read_text()
    audit = Registry(root).audit(v2)
    assert [(a["from"], a["to"]) for a in audit] == [(None, "staging"), ("staging", "archived")]
    assert audit[-1]["reason"].startswith("kept production") and audit[-1]["actor"] == "retrain"

    # 3. Nothing new (the same log is recognised, no new database rows): no training.
    third = run_once(RetrainOptions(**common, new_logs=[tmp_path / "new"], database_url=url, settings=strict))
    assert third["decision"] == "skip" and third["data"]["new"]["skipped_already_ingested"] == [str(data["new"])]
    assert "decision: skip" in format_record(third)
    runs = [orjson.loads(x) for x in (root / "runs.jsonl").read_bytes().splitlines()]
    assert [r["decision"] for r in runs] == ["promote", "keep"]  # a skipped run leaves no record
    assert not (root / "work").exists() or not any((root / "work").iterdir())


def test_one_run_per_registry_at_a_time(tmp_path):
    root = tmp_path / "reg"
    with run_lock(root):
        with pytest.raises(
            RetrainError, match=r"another retraining run holds .*retrain\.lock; not starting a second one"
        ):
            with run_lock(root):
                pass
    with run_lock(root):  # released when the first run ends
        pass
    with pytest.raises(BlockingIOError, match="inside the run"):  # only taking the lock is reported as "held"
        with run_lock(root):
            raise BlockingIOError("inside the run")
