"""``python -m app.eval`` end to end on a small synthetic JSONL log (written to tmp_path)."""

from __future__ import annotations

import orjson
import pytest

from app.eval.cli import main


@pytest.mark.parametrize("protocol", ["leave-last-out", "temporal"])
def test_cli_writes_markdown_and_json_reports(log_files, tmp_path, capsys, protocol):
    data, items = log_files
    out = tmp_path / "report"
    code = main(
        [
            "--data-path",
            str(data),
            "--items-path",
            str(items),
            "--protocol",
            protocol,
            "--models",
            "popular,itemknn,ease,baseline",
            "--min-item-positives",
            "2",
            "--min-user-positives",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "evaluated users" in printed and "| EASE |" in printed
    report = orjson.loads((out / "report.json").read_bytes())
    assert report["protocol"] == protocol
    assert set(report["models"]) == {"popular", "itemknn", "ease", "baseline"}
    assert report["filter"]["interactions_before"] == 280  # 40 users x 7 positives (low ratings are not positives)
    if protocol == "leave-last-out":
        assert report["split"]["evaluated_users_test"] == 40
        # tuned on validation: the chosen neighbourhood is one of the grid's
        assert report["models"]["itemknn"]["params"]["neighbours"] in (10, 25, 50, 100, 200, 400)
        assert len(report["models"]["ease"]["tuning"]) == 6
        # the group structure is learnable: EASE beats most popular clearly
        assert report["models"]["ease"]["metrics"]["ndcg@10"] > report["models"]["popular"]["metrics"]["ndcg@10"]
    for r in report["models"].values():
        assert set(r) >= {"metrics", "ci", "fit_seconds", "params"}
        assert 0.0 <= r["metrics"]["ndcg@10"] <= 1.0
    md = (out / "report.md").read_text()
    assert md.startswith(f"# Evaluation report ({protocol})") and "| most popular |" in md


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["--data-path", str(tmp_path / "missing.jsonl"), "--models", "popular", "--no-progress"]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data-path", "x", "--models", "popular,wrong"])
    assert "unknown model" in capsys.readouterr().err


def test_cli_can_exclude_every_seen_item_as_serving_does(log_files, tmp_path, capsys):
    data, _ = log_files
    reports = {}
    for flag in ("--no-exclude-seen", "--exclude-seen"):
        out = tmp_path / flag
        args = ["--data-path", str(data), "--models", "popular", "--min-item-positives", "2"]
        assert main([*args, "--min-user-positives", "2", "--out", str(out), "--no-progress", flag]) == 0
        reports[flag] = orjson.loads((out / "report.json").read_bytes())
    assert reports["--no-exclude-seen"]["exclusion"] == "the fitted positives"
    assert reports["--exclude-seen"]["exclusion"] == "every item seen before the target"
    capsys.readouterr()
