"""``python -m app.simulate loop`` end to end on a tiny configuration: three arms against the live service."""

from __future__ import annotations

import orjson
import pytest

from app.simulate import loop
from app.simulate.__main__ import main
from app.simulate.loop import MARKER, SimulationError, parse_arms, prepare_work_dir

TINY = ["--users", "16", "--new-users", "3", "--items", "40", "--rounds", "2", "--retrain-every", "1"]
TINY += ["--epochs", "2", "--min-round-seconds", "0", "--seed", "7"]


def test_tiny_loop_writes_plot_table_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["loop", *TINY, "--out", str(out)]) == 0
    result = orjson.loads((out / "loop.json").read_bytes())
    assert list(result["arms"]) == ["frozen", "online", "retrain"]
    assert result["config"]["rounds"] == 2 and result["initial_model"]["version"]
    for key, arm in result["arms"].items():
        assert [row["round"] for row in arm["rounds"]] == [1, 2]
        for row in arm["rounds"]:
            assert row["lists"] == 19 and row["shown"] == 19 * 10
            assert row["positive_lists"] <= row["lists"] and row["clicks"] <= row["shown"]
            for metric in ("pac", "ctr"):
                lo, hi = row[f"{metric}_ci"]
                assert 0 <= lo <= row[metric] <= hi <= 1
        assert arm["service"]["impressions"] == 2 * 19  # the service logged every list the users saw
        assert set(arm["summary"]) == {"all_rounds", "second_half"}
        lines = (out / "work" / key / "lists.jsonl").read_bytes().splitlines()
        assert len(lines) == 2 * 19 and (out / "work" / key / "service.log").exists()
        assert arm["retraining"] == [] if key != "retrain" else len(arm["retraining"]) == 1
    run = result["arms"]["retrain"]["retraining"][0]
    assert run["after_round"] == 1 and run["decision"] in ("promote", "keep", "skip")
    pairs = [(c["arm"], c["reference"]) for c in result["comparison"]]
    assert pairs == [("online", "frozen"), ("retrain", "frozen"), ("retrain", "online")]
    # the first round is the same list for the same users in every arm: the same decisions
    firsts = {k: a["rounds"][0] for k, a in result["arms"].items()}
    assert len({(r["clicks"], r["likes"], r["dislikes"]) for r in firsts.values()}) == 1

    table = (out / "loop.md").read_text()
    assert "## Summary" in table and "(c) online history + retraining" in table
    round_rows = [ln for ln in table.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |")]
    assert len(round_rows) == 2 and all(ln.count("|") == 1 + 8 for ln in round_rows)  # round, 3 PaC, 3 CTR, retraining
    png = (out / "loop.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "wrote" in capsys.readouterr().out


def test_a_failure_stops_the_service_and_says_why(tmp_path, monkeypatch, capsys):
    started = []

    class Recorded(loop.ServiceProcess):
        def start(self):
            started.append(self)
            return super().start()

    def broken(self, svc, r, u, state, trace):
        svc.get("/no-such-route")

    monkeypatch.setattr(loop, "ServiceProcess", Recorded)
    monkeypatch.setattr(loop.Simulation, "_one_list", broken)
    assert main(["loop", *TINY, "--arms", "b", "--out", str(tmp_path / "out")]) == 1
    assert "GET /no-such-route answered 404" in capsys.readouterr().err
    assert len(started) == 1 and started[0].proc is None  # stopped
    assert (tmp_path / "out" / "work" / "online" / "service.log").exists()


def test_arms_and_work_dir_checks(tmp_path):
    assert [a.key for a in parse_arms("c,a")] == ["frozen", "retrain"]
    assert [a.letter for a in parse_arms("online")] == ["b"]
    with pytest.raises(ValueError, match="unknown arm"):
        parse_arms("d")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("x")
    with pytest.raises(SimulationError, match="not made by this command"):
        prepare_work_dir(foreign)
    ours = tmp_path / "ours"
    prepare_work_dir(ours)
    (ours / "old").mkdir()
    prepare_work_dir(ours)
    assert sorted(p.name for p in ours.iterdir()) == [MARKER]
    assert main(["loop", "--rounds", "0", "--out", str(tmp_path / "x")]) == 2
