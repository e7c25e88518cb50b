"""The pure metric functions on hand-made records: window edges, anonymous lists, empty input, k."""

from __future__ import annotations

import pytest

from app.store import online_metrics as m

approx = pytest.approx


def rec(name: str, items: list[str], ts: float, engine: str = "nn", user: str | None = "u") -> m.ImpressionRecord:
    return m.ImpressionRecord(name, user, "/recommendations", engine, "v", tuple(items), None, False, 1.0, ts)


def eng(name: str, item: str, ts: float, action: str = "click", user: str = "u") -> m.EngagementRecord:
    return m.EngagementRecord(name, user, item, action, ts, True)


def test_pac_window_is_closed_and_starts_at_the_impression() -> None:
    imps = [rec("r", ["a", "b", "c", "d"], 1000.0)]
    engs = [
        eng("r", "a", 1000.0 + 3600),
        eng("r", "b", 999.0),
        eng("r", "c", 1000.0 + 3600.001),
        eng("other", "d", 1500.0),
    ]
    r = m.pac(imps, engs, k=4, window_seconds=3600)
    assert r["total_hits"] == 1 and r["pac_mean"] == approx(1 / 4)  # only a: b is before, c after, d another list


def test_replay_anonymous_list_uses_its_own_engagements() -> None:
    imps = [rec("r", ["a", "b"], 0.0, user=None)]
    r = m.replay(
        imps, [m.InteractionRecord("someone", "b", 5.0)], [eng("r", "a", 1.0, user="x")], k=2, window_seconds=60
    )
    assert r["hits"] == 1 and r["ctr"] == 1.0  # someone's event is not this list's


def test_summary_empty_and_k_validation() -> None:
    s = m.summary([], since=0, until=60, catalogue_size=0)
    assert s["requests"] == 0 and s["requests_per_minute"] == 0 and s["coverage"] is None
    assert s["latency_ms"]["p95"] is None and s["fallback_rate"] is None
    with pytest.raises(ValueError):
        m.pac([], [], k=0, window_seconds=1)


# Three lists: r1 (nn, no model version) [a b], r2 empty (left out, in no group), r3 (no engine, v) [c].
# Engagements through the lists: a on r1 at 5 s, c on r3 at 20 s; u's online event: b at 30 s. Window 60 s.
LISTS = [rec("r1", ["a", "b"], 0.0), rec("r2", [], 0.0, engine="pop"), rec("r3", ["c"], 10.0, engine="")]
LISTS[0] = LISTS[0]._replace(model_version=None)
ENGAGED = [eng("r1", "a", 5.0), eng("r3", "c", 20.0)]


def test_pac_groups_and_key_order() -> None:
    # r1: a engaged -> 1 hit of k=2, 2 shown; r3: c -> 1 hit of k=2 (PaC divides by k), 1 shown.
    one = {"impressions": 1, "pac_mean": 0.5, "total_hits": 1}
    r = m.pac(LISTS, ENGAGED, k=2, window_seconds=60)
    assert r == {
        "k": 2,
        "window_hours": 60 / 3600,
        "impressions": 2,
        "pac_mean": 0.5,
        "pac_micro": 2 / 3,
        "total_hits": 2,
        "total_recommended": 3,
        "empty_lists": 1,
        "by_engine": {
            "nn": {**one, "pac_micro": 0.5, "total_recommended": 2},
            "unknown": {**one, "pac_micro": 1.0, "total_recommended": 1},
        },
        "by_model_version": {
            "unknown": {**one, "pac_micro": 0.5, "total_recommended": 2},
            "v": {**one, "pac_micro": 1.0, "total_recommended": 1},
        },
    }
    assert list(r) == [
        "k",
        "window_hours",
        "impressions",
        "pac_mean",
        "pac_micro",
        "total_hits",
        "total_recommended",
        "empty_lists",
        "by_engine",
        "by_model_version",
    ]


def test_replay_groups_and_key_order() -> None:
    # u's timeline: a 5 s, c 20 s, b 30 s. r1 [0, 60]: {a, c, b} & {a, b} -> 2 of 2, clicked (a through r1).
    # r3 [10, 70]: {c, b} & {c} -> 1 of 1, clicked (c through r3).
    r = m.replay(LISTS, [m.InteractionRecord("u", "b", 30.0)], ENGAGED, k=2, window_seconds=60)
    perfect = {"precision_at_k": 1.0, "hit_rate_at_k": 1.0, "ctr": 1.0}
    assert r == {
        "k": 2,
        "window_hours": 60 / 3600,
        "impressions": 2,
        **perfect,
        "hits": 3,
        "recommended": 3,
        "clicked_lists": 2,
        "empty_lists": 1,
        "by_engine": {
            "nn": {"impressions": 1, **perfect, "hits": 2, "recommended": 2, "clicked_lists": 1},
            "unknown": {"impressions": 1, **perfect, "hits": 1, "recommended": 1, "clicked_lists": 1},
        },
        "by_model_version": {
            "unknown": {"impressions": 1, **perfect, "hits": 2, "recommended": 2, "clicked_lists": 1},
            "v": {"impressions": 1, **perfect, "hits": 1, "recommended": 1, "clicked_lists": 1},
        },
    }
    assert list(r)[:9] == [
        "k",
        "window_hours",
        "impressions",
        "precision_at_k",
        "hit_rate_at_k",
        "ctr",
        "hits",
        "recommended",
        "clicked_lists",
    ]
    with pytest.raises(ValueError, match="k must be at least 1"):
        m.replay(LISTS, [], [], k=0, window_seconds=60)
