"""Training CLI and ``train_model``: held-out slice, metrics beside most-popular, model directory written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from app.data.idmap import IdMap
from app.data.types import Dataset
from app.model.artifacts import load_bundle
from app.model.train import holdout_split, main, train_model

FAST = ["--embedding-dim", "8", "--epochs", "3", "--batch-size", "64", "--learning-rate", "0.05", "--ensemble", "2"]


def write_log(path: Path, n_users: int = 30, seed: int = 0) -> None:
    """Two taste groups over 16 items, 5 positives per user, mixed event types, and one bad line (line 1)."""
    rng = np.random.default_rng(seed)
    lines = [b'{"user_id": "u1", "item_id": "i1", "event": "view"}']  # no ts: rejected
    for u in range(n_users):
        group = u % 2
        for k, item in enumerate(rng.choice(8, size=5, replace=False) + 8 * group):
            event = ["view", "like", "rating"][k % 3]
            row = {"user_id": f"u{u}", "item_id": f"i{item}", "event": event, "ts": 1_700_000_000 + 3600 * (u + 37 * k),
                   "platform": "web" if k % 2 else "mobile"}
            if event == "rating":
                row["rating"] = 5
            lines.append(orjson.dumps(row))
    path.write_bytes(b"\n".join(lines) + b"\n")


def write_items(path: Path) -> None:
    path.write_bytes(b"".join(orjson.dumps({"item_id": f"i{i}", "title": f"Film {i}", "genres": ["A" if i < 8 else "B"],
                                            "year": 2000 + i}) + b"\n" for i in range(16)))


def test_cli_trains_and_writes_model(tmp_path, capsys):
    data, items, out = tmp_path / "log.jsonl", tmp_path / "items.jsonl", tmp_path / "models" / "latest"
    write_log(data)
    write_items(items)
    rejects = tmp_path / "rejects.jsonl"
    code = main(["--data-path", str(data), "--items-path", str(items), "--model-dir", str(out),
                 "--rejects-path", str(rejects), "--version", "t1", *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    assert "1 rejected" in printed and "member 2/2 epoch   3/3" in printed and "held-out HR@10" in printed and "most popular" in printed
    assert len(rejects.read_bytes().splitlines()) == 1
    bundle = load_bundle(out)
    meta = bundle.metadata
    assert bundle.version == "t1" and len(bundle.items) == 16 and len(bundle.users) == 30
    assert meta["data_summary"]["rejected_lines"] == 1 and meta["data_summary"]["positives"] == 150
    assert len(meta["data_summary"]["input_sha256"]) == 64
    m = meta["metrics"]
    assert m["heldout_users"] == 30  # every user has 5 positives: each one's latest is held out
    for key in ("loss", "hitrate@10", "ndcg@10"):
        assert np.isfinite(m[key]) and np.isfinite(m.get("popular", {}).get(key, 0.0))
    assert 0.0 <= m["ndcg@10"] <= m["hitrate@10"] <= 1.0
    assert meta["hyperparameters"]["epochs"] == 3 and meta["hyperparameters"]["embedding_dim"] == 8
    assert bundle.item_factors.shape == (16, 16)  # two members of dimension 8 side by side
    assert bundle.history.nnz == 150  # the shipped history holds every positive, held-out ones too
    assert bundle.catalogue["i3"]["title"] == "Film 3"
    assert set(meta["files"]) == {"arrays.npz", "items.jsonl", "model.keras"}


def test_cli_strict_and_bad_flags(tmp_path, capsys):
    data = tmp_path / "log.jsonl"
    write_log(data)
    out = tmp_path / "m"
    assert main(["--data-path", str(data), "--model-dir", str(out), "--strict", *FAST]) == 2
    assert "log.jsonl:1" in capsys.readouterr().err
    assert main(["--data-path", str(data), "--model-dir", str(out), "--holdout-fraction", "2"]) == 2
    assert main(["--data-path", str(data), "--model-dir", str(out), "--embedding-dim", "0"]) == 2
    assert main(["--data-path", str(tmp_path / "missing.jsonl"), "--model-dir", str(out)]) == 2
    assert not out.exists()


def test_holdout_split_by_hand():
    # user 0: 3 positives (latest: item 2), user 1: 2 positives (too few), user 2: 4 (latest: item 0)
    ds = Dataset(
        IdMap(["a", "b", "c"]), IdMap(["x", "y", "z", "w"]),
        user_idx=np.array([0, 0, 0, 1, 1, 2, 2, 2, 2], np.int32),
        item_idx=np.array([0, 1, 2, 0, 1, 3, 1, 2, 0], np.int32),
        weight=np.ones(9, np.float32),
        ts=np.array([1, 2, 3, 1, 5, 1, 2, 3, 9], np.int64),
    )
    train, held = holdout_split(ds, 1.0, seed=0)
    assert sorted(zip(held.user_idx.tolist(), held.item_idx.tolist())) == [(0, 2), (2, 0)]
    assert len(train) == 7
    none_train, none_held = holdout_split(ds, 0.0, seed=0)
    assert len(none_held) == 0 and len(none_train) == 9
    with pytest.raises(ValueError):
        holdout_split(ds, 1.5, seed=0)


def test_train_model_refit_and_metrics(planted):
    coo = planted.tocoo()
    ds = Dataset(IdMap([f"u{i}" for i in range(planted.shape[0])]), IdMap([f"i{i}" for i in range(planted.shape[1])]),
                 coo.row.astype(np.int32), coo.col.astype(np.int32), np.ones(coo.nnz, np.float32),
                 np.arange(coo.nnz, dtype=np.int64))
    lines: list[str] = []
    params = {"embedding_dim": 8, "epochs": 2, "batch_size": 64, "learning_rate": 0.05, "ensemble": 1}
    model, metrics = train_model(ds, {}, params, refit=True, log=lines.append)
    assert metrics["heldout_users"] == planted.shape[0]
    assert metrics["final_model"] == "refit on all positives" and metrics["refit_seconds"] >= 0
    assert any(line.startswith("refitting") for line in lines)
    assert model.item_factors.shape == (planted.shape[1], 8)
    _, none = train_model(ds, {}, params, holdout_fraction=0.0, log=None)
    assert none["heldout_users"] == 0 and "ndcg@10" not in none
