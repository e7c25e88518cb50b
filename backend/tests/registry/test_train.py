"""Training CLI and ``train_model``: the shipped model is fitted on every positive, the held-out figures (beside
most-popular) come from a model that never saw the held-out positives (the multi-stage engine's earlier-slice
model, or a separate evaluation fit), the model directory records what it was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from app.data.idmap import IdMap
from app.data.types import Dataset
from app.model.artifacts import load_bundle
from app.registry.train import main, train_model
from tests.model.conftest import planted_matrix

FAST = ["--embedding-dim", "8", "--epochs", "3", "--batch-size", "64", "--learning-rate", "0.05", "--ensemble", "2"]


def write_log(path: Path, n_users: int = 30, seed: int = 0) -> None:
    """Two taste groups over 16 items, 5 positives per user, mixed event types, and one bad line (line 1)."""
    rng = np.random.default_rng(seed)
    lines = [b'{"user_id": "u1", "item_id": "i1", "event": "view"}']  # no ts: rejected
    for u in range(n_users):
        group = u % 2
        for k, item in enumerate(rng.choice(8, size=5, replace=False) + 8 * group):
            event = ["view", "like", "rating"][k % 3]
            row = {
                "user_id": f"u{u}",
                "item_id": f"i{item}",
                "event": event,
                "ts": 1_700_000_000 + 3600 * (u + 37 * k),
                "platform": "web" if k % 2 else "mobile",
            }
            if event == "rating":
                row["rating"] = 5
            lines.append(orjson.dumps(row))
    path.write_bytes(b"\n".join(lines) + b"\n")


def write_items(path: Path) -> None:
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {"item_id": f"i{i}", "title": f"Film {i}", "genres": ["A" if i < 8 else "B"], "year": 2000 + i}
            )
            + b"\n"
            for i in range(16)
        )
    )


def test_cli_trains_and_writes_model(tmp_path, capsys):
    data, items, out = tmp_path / "log.jsonl", tmp_path / "items.jsonl", tmp_path / "models" / "latest"
    write_log(data)
    write_items(items)
    first_u1 = orjson.loads(data.read_bytes().splitlines()[6])  # u1's first event (group 1: items i8-i15)
    with open(data, "ab") as f:  # u0 dislikes one of u1's items: seen, never a positive
        f.write(
            orjson.dumps({"user_id": "u0", "item_id": first_u1["item_id"], "event": "dislike", "ts": 1_700_000_000})
        )
        f.write(b"\n")
    rejects = tmp_path / "rejects.jsonl"
    code = main(
        [
            "--data-path",
            str(data),
            "--items-path",
            str(items),
            "--model-dir",
            str(out),
            "--rejects-path",
            str(rejects),
            "--version",
            "t1",
            *FAST,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "1 rejected" in printed and "member 2/2 epoch   3/3" in printed and "most popular" in printed
    # the default evaluation measures the engine's earlier-slice model: no fit of its own
    assert "hybrid earlier slice member 2/2 epoch   3/3" in printed and "evaluation fit" not in printed
    assert "held-out (30 users, the earlier-slice model)" in printed and "training on all 150 positives" in printed
    assert len(rejects.read_bytes().splitlines()) == 1
    bundle = load_bundle(out)
    meta = bundle.metadata
    assert bundle.version == "t1" and len(bundle.items) == 16 and len(bundle.users) == 30
    assert meta["data_summary"]["rejected_lines"] == 1 and meta["data_summary"]["positives"] == 150
    assert len(meta["data_summary"]["input_sha256"]) == 64
    # the same value as before app.files: each input file's name, a NUL, then its bytes
    assert meta["data_summary"]["input_sha256"] == hashlib.sha256(b"log.jsonl\0" + data.read_bytes()).hexdigest()
    fit = meta["data_summary"]["fit"]
    assert fit["part"] == "all" and fit["positives"] == 150 and fit["users"] == 30 and fit["items"] == 16
    assert (fit["ts_min"], fit["ts_max"]) == (1_700_000_000, 1_700_000_000 + 3600 * (29 + 37 * 4))
    assert meta["data_summary"]["input_files_sha256"] == {str(data): hashlib.sha256(data.read_bytes()).hexdigest()}
    m = meta["metrics"]
    assert m["evaluation"] == "earlier slice" and "the shipped model is trained on all positives" in m["describes"]
    assert "the shipped recipe" in m["describes"] and m["final_model"] == "trained on all positives (150)"
    assert m["heldout_users"] == 30  # every user has 5 positives: each one's latest is in the later slice
    for key in ("loss", "hitrate@10", "ndcg@10"):
        assert np.isfinite(m[key]) and np.isfinite(m.get("popular", {}).get(key, 0.0))
    assert 0.0 <= m["ndcg@10"] <= m["hitrate@10"] <= 1.0
    assert meta["hyperparameters"]["epochs"] == 3 and meta["hyperparameters"]["embedding_dim"] == 8
    assert bundle.item_factors.shape == (16, 16)  # two members of dimension 8 side by side
    assert bundle.history.nnz == 150  # the shipped history holds every positive, held-out ones too
    u0, disliked = bundle.users.index("u0"), bundle.items.index(first_u1["item_id"])
    assert bundle.history[u0, disliked] == 0 and bundle.seen[u0, disliked] == 1  # seen, not a positive
    assert bundle.seen.nnz == 151
    assert bundle.catalogue["i3"]["title"] == "Film 3"
    # the default pipeline also writes the hybrid engine, with its validation beside the model's
    assert set(meta["files"]) == {"arrays.npz", "items.jsonl", "model.keras", "hybrid.npz", "ranker.txt"}
    assert m["hybrid"]["auto"] in ("hybrid", "nn") and "hybrid: validation" in printed
    assert meta["hybrid"]["sources"] == ["nn", "itemknn", "als", "ease", "popular", "trending", "genre"]


def test_cli_pipeline_nn_skips_the_hybrid_engine_and_too_little_data_is_said(tmp_path, capsys):
    data, items = tmp_path / "log.jsonl", tmp_path / "items.jsonl"
    write_log(data)
    write_items(items)
    base = ["--data-path", str(data), "--items-path", str(items), *FAST]
    assert main([*base, "--model-dir", str(tmp_path / "nn"), "--pipeline", "nn"]) == 0
    printed = capsys.readouterr().out
    assert "hybrid" not in printed and "evaluation fit (quick, not shipped)" in printed  # auto: as quick
    nn = load_bundle(tmp_path / "nn")
    assert not nn.has_hybrid and nn.metadata["metrics"]["evaluation"] == "quick"
    assert "one ensemble member (of 2)" in nn.metadata["metrics"]["describes"]
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_bytes(b"".join(data.read_bytes().splitlines(keepends=True)[:20]))  # 4 users: too few for a ranker
    assert main([*base[:1], str(tiny), *base[2:], "--model-dir", str(tmp_path / "tiny")]) == 0
    printed = capsys.readouterr().out
    assert "hybrid: not built" in printed
    meta = load_bundle(tmp_path / "tiny").metadata
    assert meta["metrics"]["hybrid"]["auto"] == "nn" and "hybrid" not in meta
    # without the engine's earlier slice, auto falls back to the quick evaluation fit
    assert meta["metrics"]["evaluation"] == "quick" and "evaluation fit (quick, not shipped)" in printed
    assert main([*base, "--evaluation", "none", "--model-dir", str(tmp_path / "none")]) == 0
    assert "held-out" not in capsys.readouterr().out
    assert load_bundle(tmp_path / "none").metadata["metrics"]["heldout_users"] == 0


def test_the_shipped_fit_beside_the_engine_is_the_one_fit_alone_and_survives_a_failed_ranker(
    tmp_path, capsys, monkeypatch
):
    """With the default pipeline the shipped fit runs in a thread beside the engine's earlier-slice fit:
    it is the same model as ``--pipeline nn`` fits on its own, and when the engine fails after that fit
    started (here: its ranker stage), that model ships, fitted once."""
    from app.model.hybrid import HybridRecommender

    data, items = tmp_path / "log.jsonl", tmp_path / "items.jsonl"
    write_log(data)
    write_items(items)
    base = ["--data-path", str(data), "--items-path", str(items), "--evaluation", "none", *FAST]
    assert main([*base, "--model-dir", str(tmp_path / "alone"), "--pipeline", "nn"]) == 0
    capsys.readouterr()

    def no_ranker(*args, **kwargs):
        raise ValueError("no ranker today")

    monkeypatch.setattr(HybridRecommender, "_training_frame", no_ranker)
    assert main([*base, "--model-dir", str(tmp_path / "beside")]) == 0
    printed = capsys.readouterr().out
    assert "hybrid: not built: no ranker today" in printed and "hybrid earlier slice member 2/2" in printed
    assert printed.count("training on all 150 positives") == 1
    alone, beside = load_bundle(tmp_path / "alone"), load_bundle(tmp_path / "beside")
    np.testing.assert_array_equal(beside.item_factors, alone.item_factors)
    assert beside.metadata["metrics"]["hybrid"]["auto"] == "nn" and not beside.has_hybrid


def test_cli_strict_and_bad_flags(tmp_path, capsys):
    data = tmp_path / "log.jsonl"
    write_log(data)
    out = tmp_path / "m"
    assert main(["--data-path", str(data), "--model-dir", str(out), "--strict", *FAST]) == 2
    assert "log.jsonl:1" in capsys.readouterr().err
    assert main(["--data-path", str(data), "--model-dir", str(out), "--holdout-fraction", "2"]) == 2
    with pytest.raises(SystemExit):  # --refit is gone: the shipped model is always fitted on every positive
        main(["--data-path", str(data), "--model-dir", str(out), "--refit"])
    assert main(["--data-path", str(data), "--model-dir", str(out), "--embedding-dim", "0"]) == 2
    assert main(["--data-path", str(tmp_path / "missing.jsonl"), "--model-dir", str(out)]) == 2
    assert not out.exists()


@pytest.fixture(scope="module")
def planted() -> sp.csr_matrix:
    """The model tests' two-group data (users 0-19 like items 0-9, users 20-39 items 10-19)."""
    return planted_matrix()


def test_train_model_ships_a_fit_on_every_positive(planted):
    coo = planted.tocoo()
    ds = Dataset(
        IdMap([f"u{i}" for i in range(planted.shape[0])]),
        IdMap([f"i{i}" for i in range(planted.shape[1])]),
        coo.row.astype(np.int32),
        coo.col.astype(np.int32),
        np.ones(coo.nnz, np.float32),
        np.arange(coo.nnz, dtype=np.int64),
    )
    lines: list[str] = []
    params = {"embedding_dim": 8, "epochs": 2, "batch_size": 64, "learning_rate": 0.05, "ensemble": 2}
    model, metrics = train_model(ds, {}, params, evaluation="quick", log=lines.append)
    assert metrics["heldout_users"] == planted.shape[0] and metrics["evaluation"] == "quick"
    assert metrics["evaluation_seconds"] >= 0 and metrics["train_seconds"] >= 0
    assert metrics["final_model"] == f"trained on all positives ({coo.nnz})"
    assert any(line.startswith(f"training on all {coo.nnz} positives") for line in lines)
    evaluation_lines = [line for line in lines if line.startswith("eval ")]
    assert evaluation_lines and not any("member" in line for line in evaluation_lines)  # quick: one member
    assert sum("member 2/2" in line for line in lines) == 2  # the shipped fit: both members, two epochs
    assert model.item_factors.shape == (planted.shape[1], 16)
    _, none = train_model(ds, {}, params, evaluation="none", log=None)
    assert none["heldout_users"] == 0 and "ndcg@10" not in none and "no evaluation fit" in none["describes"]
    with pytest.raises(ValueError, match="evaluation must be one of"):
        train_model(ds, {}, params, evaluation="sometimes", log=None)


def test_progress_lines_say_how_long_is_left() -> None:
    """Each epoch line ends with the time left for every member's remaining epochs, from the mean so far."""
    from app.registry.train import _duration, _progress

    lines: list[str] = []
    report = _progress(lines.append, {"ensemble": 2, "epochs": 3}, "", None)
    report(1, {"loss": 1.0, "seconds": 50.0, "member": 1})  # a first epoch: compiling, no estimate yet
    report(2, {"loss": 0.9, "seconds": 30.0, "member": 1})
    report(6, {"loss": 0.5, "seconds": 30.0, "member": 2})
    assert "ETA" not in lines[0]
    assert lines[1].endswith("ETA 2m20s")  # 4 epochs left at 30 s, and member 2's first costs 20 s more
    assert "ETA" not in lines[2]
    assert (_duration(9), _duration(75), _duration(3700)) == ("9s", "1m15s", "1h01m")


def test_defaults_are_sized_to_the_data() -> None:
    """Small data keeps every default; a big users x items matrix gets wider batches and fewer member-epochs,
    members first; whatever is given is kept as given."""
    from app.model.embedding import DEFAULT_PARAMS, sized_params

    assert sized_params(943, 1682) == DEFAULT_PARAMS  # MovieLens 100K: 1.6M cells
    # 14,300 x 5,500 = 78.65M cells: 2.5e9 / 78.65M = 31.8 member-epochs -> 1 member (31.8 // 40 -> 1) x 32 epochs
    shop = sized_params(14_300, 5_500)
    assert (shop["ensemble"], shop["epochs"], shop["batch_size"]) == (1, 32, 1024)
    # 2,500 x 10,000 = 25M cells: 100 member-epochs -> 2 members x 40 epochs (50 rounds to 50, capped at 40)
    mid = sized_params(2_500, 10_000)
    assert (mid["ensemble"], mid["epochs"], mid["batch_size"]) == (2, 40, 1024)
    # 138,000 x 27,154 = 3.75e9 cells = 27.9 x 2**27 -> batch 1024 x 16; 0.67 member-epochs -> 1 x 4 (the floor)
    big = sized_params(138_000, 27_154)
    assert (big["ensemble"], big["epochs"], big["batch_size"]) == (1, 4, 16_384)
    assert {k: v for k, v in big.items() if k not in ("ensemble", "epochs", "batch_size")} == {
        k: v for k, v in DEFAULT_PARAMS.items() if k not in ("ensemble", "epochs", "batch_size")
    }
    given = sized_params(138_000, 27_154, {"ensemble": 3, "batch_size": 512, "learning_rate": 0.1})
    assert (given["ensemble"], given["epochs"], given["batch_size"], given["learning_rate"]) == (3, 4, 512, 0.1)
    assert sized_params(138_000, 27_154, {"epochs": 30})["epochs"] == 30


def test_sparse_data_gets_fewer_epochs() -> None:
    """Cells x member-epochs stay within 8,000 per positive, 4,000 under 1% of the cells positive: a
    shop-shaped log's 10 positives a user cut its epochs; MovieLens 100K's 59 and a MovieLens-shaped
    1M log's 52 leave them as they were."""
    from app.model.embedding import DEFAULT_PARAMS, sized_params

    # 0.18% positive: 4,000 x 138,861 / (14,000 x 5,500) = 7.2 member-epochs -> 1 member x 7 epochs
    shop = sized_params(14_000, 5_500, None, 138_861)
    assert (shop["ensemble"], shop["epochs"], shop["batch_size"]) == (1, 7, 1024)
    # either side of 1% of 31 million cells: 8,000 x 320,000 / 31.05M = 82 -> 2 x 40; 4,000 x 300,000 -> 39
    above, below = sized_params(6_900, 4_500, None, 320_000), sized_params(6_900, 4_500, None, 300_000)
    assert (above["ensemble"], above["epochs"], below["ensemble"], below["epochs"]) == (2, 40, 1, 39)
    assert sized_params(943, 1682, None, 55_375) == DEFAULT_PARAMS
    movielens_1m = sized_params(6_900, 4_500, None, 358_026)
    assert (movielens_1m["ensemble"], movielens_1m["epochs"]) == (2, 40)
    # never below the floor of 4 epochs; what is given is kept
    assert sized_params(14_000, 5_500, None, 1_000)["epochs"] == 4
    assert sized_params(14_000, 5_500, {"epochs": 32}, 138_861)["epochs"] == 32


def test_cli_sizes_what_is_left_on_auto(tmp_path, capsys, monkeypatch):
    """``--epochs auto`` (the default) leaves the choice to ``sized_params``; a number is kept; junk is refused."""
    import app.model.embedding as embedding

    data, out = tmp_path / "log.jsonl", tmp_path / "m"
    write_log(data)
    monkeypatch.setattr(embedding, "MEMBER_EPOCH_CELLS", 30 * 16 * 2 * 3)  # this log: 30 users x 16 items
    args = ["--data-path", str(data), "--model-dir", str(out), "--embedding-dim", "8", "--evaluation", "none"]
    assert main(args) == 0
    hp = load_bundle(out).metadata["hyperparameters"]
    assert (hp["ensemble"], hp["epochs"]) == (1, 6) and "sized to 30 users x 16 items: epochs 6, ensemble 1" in (
        capsys.readouterr().out
    )
    assert main([*args, "--ensemble", "2", "--epochs", "5"]) == 0
    hp = load_bundle(out).metadata["hyperparameters"]
    assert (hp["ensemble"], hp["epochs"]) == (2, 5)
    with pytest.raises(SystemExit):
        main([*args, "--epochs", "many"])
    assert "expected auto or a whole number" in capsys.readouterr().err
