"""The validation search: candidate generation and the CLI on a small synthetic log."""

from __future__ import annotations

import orjson
import pytest

from app.eval.tune import NN_SPACE, candidates, engine_arguments, main


def test_candidates_grid_and_random():
    space = {"a": [1, 2], "b": ["x", "y", "z"]}
    assert candidates(space, 2, "grid", 0) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}]
    picked = candidates(space, 4, "random", 7)
    assert len(picked) == 4 and len({tuple(p.items()) for p in picked}) == 4  # no repeats
    assert picked == candidates(space, 4, "random", 7)  # seeded
    assert len(candidates(space, 100, "random", 0)) == 6  # never more than the grid holds
    with pytest.raises(ValueError):
        candidates(space, 0, "grid", 0)


def test_default_nn_space_matches_the_model_constructor():
    allowed = engine_arguments("nn")
    if allowed is None:
        pytest.skip("app.model.embedding is not available")
    assert set(NN_SPACE) <= allowed


def test_tune_cli_reports_the_best_setting(log_files, tmp_path, capsys):
    data, _ = log_files
    code = main(
        [
            "--data-path",
            str(data),
            "--model",
            "ease",
            "--space",
            '{"l2": [1.0, 10.0, 100.0]}',
            "--budget",
            "3",
            "--search",
            "grid",
            "--min-item-positives",
            "2",
            "--min-user-positives",
            "2",
            "--test-seeds",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = orjson.loads((tmp_path / "tune.json").read_bytes())
    assert len(out["trials"]) == 3
    scores = [t["metrics"]["ndcg@10"] for t in out["trials"]]
    assert scores == sorted(scores, reverse=True) and out["best"] == out["trials"][0]
    assert "test" in out and out["test"]["params"]["l2"] == out["best"]["params"]["l2"]
    assert orjson.dumps(out["best"]["params"]).decode() in capsys.readouterr().out


def test_tune_cli_rejects_unknown_parameters(capsys):
    with pytest.raises(SystemExit):
        main(["--data-path", "x", "--model", "ease", "--space", '{"lam": [1]}'])
    assert "ease has no parameter(s) lam" in capsys.readouterr().err
