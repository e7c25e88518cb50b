"""The daily report's rows and rendering on the hand-made log (the CLI around it: ``test_cli.py``)."""

from __future__ import annotations

from datetime import date

import pytest

from app.store import Store
from app.store.online_report import daily_rows, days, render_markdown
from tests.store import scenario as sc


def test_days_are_inclusive_and_ordered() -> None:
    assert days(date(2026, 1, 30), date(2026, 2, 1)) == [date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)]
    assert days(date(2026, 1, 1), date(2026, 1, 1)) == [date(2026, 1, 1)]
    with pytest.raises(ValueError, match="before start"):
        days(date(2026, 1, 2), date(2026, 1, 1))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: test_metric_queries
def test_rows_per_day_then_the_whole_range(store: Store) -> None:
    sc.load(store)
    rows = daily_rows(store, date(2026, 1, 1), date(2026, 1, 3), k=3)
    assert [r["date"] for r in rows] == ["2026-01-01", "2026-01-02", "2026-01-03", "all"]
    assert [r["requests"] for r in rows] == [5, 0, 1, 6]  # list E is on day 3
    assert rows[0]["pac_mean"] == pytest.approx(1 / 4) and rows[1]["pac_mean"] is None
    assert rows[0]["_pac"] == store.pac(sc.T0, sc.T0 + sc.DAY, k=3)  # the same figures as /metrics/pac
    text = render_markdown(rows, k=3, window_hours=24)
    assert text.startswith("# Recommender report 2026-01-01 to 2026-01-03 (k=3, window 24 h, UTC days)")
    assert "| 2026-01-02 | 0 | 0.00 | 0 | - |" in text  # an empty day: no latency, no ratios
