"""The promotion gate compares production and candidate on data neither was trained on.

The README's flow: a model trained by the training CLI (on every positive of the base log) is registered and
promoted by hand, then a retraining run on new logs. The leave-last-out validation rows of the users without
new data are in that model's training data; the run sees it and judges production on users it never saw,
or on a refit of its configuration, or refuses. Tiny data, 2-3 epochs, one ensemble member.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

import app.registry.pipeline as pipeline
from app.config import Settings
from app.model.artifacts import load_bundle
from app.registry.cli import main as registry_cli
from app.registry.compare import Remapped
from app.registry.pipeline import RetrainOptions, run_once
from app.registry.run_report import format_list
from app.registry.train import main as train_cli
from app.registry.versions import Registry
from tests.registry.helpers import DAY, T0, synthetic_items, synthetic_log, write_jsonl

CANDIDATE = {"epochs": 3, "embedding_dim": 8, "batch_size": 64, "learning_rate": 0.05, "ensemble": 1}
CLI_FAST = ["--embedding-dim", "8", "--epochs", "3", "--batch-size", "64", "--learning-rate", "0.05", "--ensemble", "1"]
CLI_POOR = [
    "--embedding-dim",
    "8",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--learning-rate",
    "0.0001",
    "--ensemble",
    "1",
]


def fresh_rows(base: list[dict], n_users: int = 20, groups: int = 3, n_items: int = 30) -> list[dict]:
    """Two new positives for each of the first ``n_users`` users, on items of their group they never had."""
    had: dict[str, set[str]] = {}
    for r in base:
        had.setdefault(r["user_id"], set()).add(r["item_id"])
    rows = []
    for u in range(n_users):
        unplayed = [f"i{i}" for i in range(n_items) if i % groups == u % groups and f"i{i}" not in had[f"u{u}"]]
        for k, item in enumerate(unplayed[:2]):
            rows.append({"user_id": f"u{u}", "item_id": item, "event": "like", "ts": T0 + (20 + k) * DAY + u})
    return rows


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("fair")
    base_rows = synthetic_log()  # 40 users, 8 positives each
    base = write_jsonl(tmp / "base.jsonl", base_rows)
    items = write_jsonl(tmp / "items.jsonl", synthetic_items())
    new = write_jsonl(tmp / "new" / "day20.jsonl", fresh_rows(base_rows))
    out = {"base": base, "items": items, "new": new}
    for name, flags in (("cli", CLI_FAST), ("poor", CLI_POOR)):
        model = tmp / f"model-{name}"
        args = ["--data-path", str(base), "--items-path", str(items), "--model-dir", str(model)]
        assert train_cli([*args, "--version", f"cli-{name}", *flags]) == 0
        out[name] = model
    return out


def promote_by_hand(root: Path, model_dir: Path, capsys) -> str:
    """``python -m app.registry register DIR`` then ``promote V --to production`` (the README's flow)."""
    assert registry_cli(["--registry-dir", str(root), "register", str(model_dir)]) == 0
    version = Registry(root).versions()[-1]["version"]
    assert registry_cli(["--registry-dir", str(root), "promote", version, "--to", "production"]) == 0
    capsys.readouterr()
    return version


def options(root: Path, logs: dict[str, Path], **kw) -> RetrainOptions:
    return RetrainOptions(
        registry_dir=root,
        data_paths=[logs["base"]],
        items_path=logs["items"],
        new_logs=[logs["new"]],
        train_params=CANDIDATE,
        baselines=("popular",),
        n_boot=0,
        settings=Settings(),
        **kw,
    )


def capture_evaluation(monkeypatch) -> list[tuple]:
    """Record what the run's evaluation was given (models, split, exclusions), to score production as it is."""
    calls: list[tuple] = []
    real = pipeline.evaluate_models

    def spy(models, split, **kw):
        calls.append((split, kw.get("exclude")))
        return real(models, split, **kw)

    monkeypatch.setattr(pipeline, "evaluate_models", spy)
    return calls


def test_a_cli_trained_production_model_is_refitted_not_judged_on_its_training_data(
    tmp_path, logs, capsys, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    champion = promote_by_hand(root, logs["cli"], capsys)
    calls = capture_evaluation(monkeypatch)
    record = run_once(options(root, logs))  # min_gate_users 50 > the 20 users production never saw: refit
    ev = record["evaluation"]
    c = ev["comparison"]
    # The 20 users without new data: their validation row (second-latest positive) is in the CLI model's data.
    assert c["method"] == "refit" and c["overlap_rows"] == 20 and c["users_with_overlap"] == 20
    assert c["unseen_users"] == 20 and c["evaluated_users"] == 40 == ev["evaluated_users"]
    assert "trained on all positives" in c["production_fitted_on"]
    assert c["production_data"]["fit"]["part"] == "all"
    assert c["refit_params"]["epochs"] == 3 and c["refit_params"]["embedding_dim"] == 8
    assert ev["production"]["method"] == "refit" and ev["production"]["version"] == champion
    # what production would have scored as it is, on rows it was trained on: not what the gate used
    split, exclude = calls[0]
    bundle = load_bundle(root / "versions" / champion)  # the champion of this run (the candidate may have replaced it)
    as_is = Remapped(bundle.scorer(), bundle.users, bundle.items, split.users, split.items)
    leaked = pipeline.evaluate_models({"production": as_is}, split, n_boot=0, exclude=exclude)["production"]
    recorded = ev["production"]["metrics"]["ndcg@10"]
    assert recorded != pytest.approx(leaked["metrics"]["ndcg@10"], abs=1e-6)
    decision = orjson.loads((root / "versions" / record["candidate"] / "decision.json").read_bytes())
    assert decision["comparison"]["method"] == "refit"
    assert decision["metrics"][0]["old"] == pytest.approx(recorded)  # the decision uses the refit's figure
    # registry list: the candidate's gate figure from this run, labelled; the hand-registered model is not gated
    rows = {r["version"]: r for r in Registry(root).versions()}
    gate = rows[record["candidate"]]["gate"]
    assert gate["method"] == "refit" and gate["metrics"]["ndcg@10"] == pytest.approx(
        ev["candidate"]["metrics"]["ndcg@10"]
    )
    assert rows[champion]["gate"]["role"] == "production"  # judged (by its refit) in the same evaluation
    assert "refit, 40 users" in format_list(list(rows.values()))


def test_with_enough_unseen_users_every_model_is_judged_on_them(tmp_path, logs, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    promote_by_hand(root, logs["cli"], capsys)
    record = run_once(options(root, logs, min_gate_users=10))
    ev = record["evaluation"]
    assert ev["comparison"]["method"] == "unseen-users" and ev["evaluated_users"] == 20
    assert ev["production"]["n_users"] == ev["candidate"]["n_users"] == ev["models"]["popular"]["n_users"] == 20
    assert "never saw" in ev["comparison"]["detail"]


def test_a_truly_better_candidate_is_promoted(tmp_path, logs, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    champion = promote_by_hand(root, logs["poor"], capsys)  # one epoch at learning rate 1e-4: barely trained
    record = run_once(options(root, logs))
    ev = record["evaluation"]
    assert ev["comparison"]["method"] == "refit"
    assert ev["candidate"]["metrics"]["ndcg@10"] > 1.01 * ev["production"]["metrics"]["ndcg@10"]
    assert record["decision"] == "promote" and Registry(root).production() == record["candidate"] != champion


def test_a_production_model_that_cannot_be_refitted_is_refused_not_judged(tmp_path, model_dir, capsys, monkeypatch):
    """The registry tests' hand-made model (no full configuration) was trained on the validation rows."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    champion = promote_by_hand(root, model_dir("hand-made"), capsys)  # history u1: i1 i2, u2: i2 i3, u3: i4
    order = {"u1": ["i3", "i4", "i1", "i2"], "u2": ["i1", "i4", "i2", "i3"], "u3": ["i1", "i2", "i4", "i3"]}
    rows = [
        {"user_id": u, "item_id": i, "event": "play", "ts": T0 + k * DAY}
        for u, items in order.items()
        for k, i in enumerate(items)
    ]
    base = write_jsonl(tmp_path / "base.jsonl", rows)
    opts = RetrainOptions(
        registry_dir=root,
        data_paths=[base],
        train_params=CANDIDATE,
        baselines=(),
        n_boot=0,
        force=True,  # no new data: the base log alone, against a production model trained on it
        settings=Settings(),
    )
    record = run_once(opts)
    assert record["decision"] == "refused" and record["stage"] == "staging"
    assert "cannot be refitted" in record["reason"] and "promote it by hand" in record["reason"]
    assert Registry(root).production() == champion
    assert {r["version"]: r["stage"] for r in Registry(root).versions()}[record["candidate"]] == "staging"
    decision = orjson.loads((root / "versions" / record["candidate"] / "decision.json").read_bytes())
    assert decision["decision"] == "refused" and decision["rules"][0]["rule"] == "fair_comparison"
    assert decision["comparison"]["overlap_rows"] == 3 and "production" not in record["evaluation"]["models"]
    run = orjson.loads((root / "runs.jsonl").read_bytes().splitlines()[-1])
    assert run["decision"] == "refused" and run["gate"]["method"] == "refused"


def test_a_like_posted_through_the_api_reaches_the_next_models_training_data(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from app.model.artifacts import load_bundle
    from app.store import Store
    from tests.store import scenario as sc
    from tests.store.conftest import make_app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    base_rows = synthetic_log()
    base = write_jsonl(tmp_path / "base.jsonl", base_rows)
    assert not any(r["user_id"] == "u5" and r["item_id"] == "i0" for r in base_rows)  # u5's group is 2, i0's is 0
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with Store.from_url(url) as store:
        store.start()
        rid = sc.show_list(store, user="u5", items=("i0", "i3", "i6"))
        with TestClient(make_app(store)) as client:
            r = client.post(
                "/events/engagement",
                json={"recset_id": rid, "user_id": "u5", "item_id": "i0", "action_type": "like", "platform": "web"},
            )
            assert r.status_code == 201, r.text
            like_id = r.json()["id"]
    root = tmp_path / "reg"
    opts = RetrainOptions(
        registry_dir=root,
        data_paths=[base],
        database_url=url,
        train_params=CANDIDATE,
        baselines=(),
        n_boot=0,
        settings=Settings(),
    )
    record = run_once(opts)
    new = record["data"]["new"]
    assert (new["online_engagements"], new["online_events"], new["from_logs"]) == (1, 0, 0)
    bundle = load_bundle(root / "versions" / record["candidate"])
    assert bundle.history[bundle.users.index("u5"), bundle.items.index("i0")] > 0  # the like is training data
    assert bundle.metadata["data_summary"]["online_through"] == {"events": 0, "engagements": like_id}
    assert bundle.metadata["data_summary"]["database_rows"] == [
        {"run_id": record["run_id"], "table": "engagements", "first_id": 1, "last_id": like_id}
    ]
    assert np.isfinite(record["evaluation"]["candidate"]["metrics"]["ndcg@10"])


def test_clicks_that_productions_own_lists_collected_are_not_a_fair_test_of_production(tmp_path, logs, monkeypatch):
    """A closed loop: every new positive is an engagement with an item production put in the list. Judged
    on those, production is bound to win; they count as overlap, so production is refitted instead."""
    import uuid

    from app.store import Store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "reg"
    first = run_once(
        RetrainOptions(
            registry_dir=root,
            data_paths=[logs["base"]],
            train_params=CANDIDATE,
            baselines=(),
            n_boot=0,
            settings=Settings(),
        )
    )
    production = first["candidate"]
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with Store.from_url(url) as store:
        for row in fresh_rows(orjson_rows(logs["base"])):
            rid = str(uuid.uuid4())
            store.log_impression(rid, row["user_id"], "/recommendations", "nn", production, [row["item_id"]], [1.0])
            store.record_engagement(rid, row["user_id"], row["item_id"], "like", ts=row["ts"])
    record = run_once(
        RetrainOptions(
            registry_dir=root,
            data_paths=[logs["base"]],
            database_url=url,
            train_params=CANDIDATE,
            baselines=(),
            n_boot=0,
            settings=Settings(),
        )
    )
    c = record["evaluation"]["comparison"]
    assert c["self_exposed_rows"] == 20 and c["users_with_overlap"] == 20  # the 20 users' latest like
    assert c["method"] == "refit" and "collected by its lists" in c["detail"]
    primary = orjson.loads((root / "versions" / record["candidate"] / "decision.json").read_bytes())["rules"][0]
    assert "needs >= -1.00%" in primary["detail"]  # as good as production's recipe on the same data, within 1%


def orjson_rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
