"""``python -m app.store``: seed (JSONL and MovieLens), report (Markdown, HTML), replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.store import Store
from app.store import schema as t
from app.store.__main__ import main
from tests.store import scenario as sc
from tests.store.scenario import T0


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_seed_jsonl_and_reseed(tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture) -> None:
    data = _jsonl(
        tmp_path / "interactions.jsonl",
        [
            {"user_id": "u1", "item_id": "i1", "event": "watch", "ts": T0, "platform": "web"},
            {"user_id": "u1", "item_id": "i2", "event": "rating", "rating": 4, "ts": T0 + 1},
            {"user_id": "u2", "item_id": "i9", "event": "click", "ts": T0 + 2},  # not in the catalogue
            {"user_id": "u3", "item_id": "i1", "event": "teleport", "ts": T0 + 3},  # rejected line
        ],
    )
    items = _jsonl(
        tmp_path / "items.jsonl",
        [
            {"item_id": "i1", "title": "One", "genres": ["Drama"], "year": 1999, "director": "X"},
            {"item_id": "i2", "title": "Two", "genres": "Action|Comedy"},
        ],
    )
    assert main(["--database-url", sqlite_url, "seed", "--data-path", str(data), "--items-path", str(items)]) == 0
    out = capsys.readouterr().out
    assert "3 accepted, 1 rejected" in out and "users 2, items 3, interactions 3" in out
    store = Store.from_url(sqlite_url).start()
    try:
        row = store.page(t.items, where=[t.items.c.item_id == "i1"])["rows"][0]
        assert row["extra"] == {"director": "X"} and row["genres"] == ["Drama"]
        assert store.page(t.items, where=[t.items.c.item_id == "i2"])["rows"][0]["genres"] == ["Action", "Comedy"]
        _jsonl(data, [{"user_id": "u7", "item_id": "i1", "event": "view", "ts": T0}])
        assert main(["--database-url", sqlite_url, "seed", "--data-path", str(data), "--items-path", str(items)]) == 0
        assert store.count(t.interactions) == 1 and store.count(t.users) == 1 and store.count(t.items) == 2
    finally:
        store.close()
    assert main(["--database-url", sqlite_url, "seed", "--data-path", str(tmp_path / "missing.jsonl")]) == 2


def report(url: str, flags: str, *paths: str) -> int:
    """``python -m app.store --database-url URL report FLAGS PATHS``: its exit code."""
    return main(["--database-url", url, "report", *flags.split(), *paths])


def test_report_markdown_and_html(tmp_path: Path, sqlite_url: str) -> None:
    store = Store.from_url(sqlite_url).start()
    sc.load(store)
    store.close()
    md = tmp_path / "report.md"
    assert report(sqlite_url, "--start 2026-01-01 --end 2026-01-03 --format md --k 3", "--out", str(md)) == 0
    text = md.read_text()
    lines = {line.split(" | ")[0].strip("| *"): line for line in text.splitlines() if line.startswith("| ")}
    day1 = lines["2026-01-01"].split(" | ")
    # requests 5, users 4, p95 48 ms, coverage 0.6, fallback 0.6, PaC mean 7/24, micro 3/11, precision 13/24, CTR 3/4
    assert day1[1] == "5" and day1[3] == "4" and day1[6] == "48.00" and day1[8] == "0.600" and day1[9] == "0.600"
    assert day1[10] == f"{6 / 24:.4f}" and day1[11] == f"{3 / 11:.4f}" and day1[12] == f"{13 / 24:.4f}"
    assert day1[14].rstrip(" |") == "0.7500"
    assert lines["2026-01-02"].split(" | ")[1] == "0" and lines["2026-01-03"].split(" | ")[1] == "1"  # list E
    assert lines["all"].split(" | ")[1] == "**6**"
    assert "| baseline | 1 |" in text
    page = tmp_path / "r.html"
    assert report(sqlite_url, "--start 2026-01-01 --end 2026-01-01 --format html", "--out", str(page)) == 0
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<td>2026-01-01</td><td>5</td>" in html
    assert main(["--database-url", sqlite_url, "report", "--start", "2026-01-02", "--end", "2026-01-01"]) == 2


def test_replay_command(sqlite_url: str, capsys: pytest.CaptureFixture) -> None:
    store = Store.from_url(sqlite_url).start()
    sc.load(store)
    store.close()
    assert (
        main(["--database-url", sqlite_url, "replay", "--start", "2026-01-01", "--end", "2026-01-02", "--k", "3"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["precision_at_k"] == pytest.approx(13 / 24) and result["by_engine"]["nn"]["impressions"] == 2


@pytest.mark.slow
def test_seed_movielens(ml100k: Path, sqlite_url: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["--database-url", sqlite_url, "seed", "--movielens", str(ml100k)]) == 0
    assert "users 943, items 1682, interactions 100000" in capsys.readouterr().out
