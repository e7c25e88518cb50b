"""``Store.pac``, ``replay`` and ``summary`` against the hand-made log in ``scenario.py`` (figures worked out
by hand), and the training rule of positives in replay."""

from __future__ import annotations

import pytest

from app.data.aggregate import to_positives
from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc
from tests.store.scenario import DAY, RECSETS, T0

approx = pytest.approx


@pytest.fixture
def loaded(store: Store) -> Store:
    sc.load(store)
    return store


def test_pac_first_day_k3(loaded: Store) -> None:
    # A: top3 {i1,i2,i3}; i2 clicked and liked (one distinct hit), i5 is rank 5, i9 not in the list,
    #    i1 after 25 h, i3 disliked -> 1/3.  B: 2 items, i1 clicked -> 1/3 (PaC divides by k).  C: i3 -> 1/3 (i6 is rank 4).
    # F: no engagement -> 0.  D: empty list, left out.
    r = loaded.pac(T0, T0 + DAY, k=3, window_hours=24)
    assert r["impressions"] == 4 and r["empty_lists"] == 1
    assert r["total_hits"] == 3 and r["total_recommended"] == 3 + 2 + 3 + 3
    assert r["pac_mean"] == approx((1 / 3 + 1 / 3 + 1 / 3 + 0) / 4)
    assert r["pac_micro"] == approx(3 / 11)
    assert r["by_engine"]["nn"] == {
        "impressions": 2,
        "pac_mean": approx(1 / 3),
        "pac_micro": approx(2 / 6),
        "total_hits": 2,
        "total_recommended": 6,
    }
    assert r["by_engine"]["popular"]["pac_mean"] == approx((1 / 3 + 0) / 2)
    assert r["by_engine"]["popular"]["pac_micro"] == approx(1 / 5)
    assert "baseline" not in r["by_engine"]  # list E is on day 3
    assert r["by_model_version"]["v1"]["pac_mean"] == approx((1 / 3 + 1 / 3 + 0) / 3)
    assert r["by_model_version"]["v1"]["pac_micro"] == approx(2 / 8)
    assert r["by_model_version"]["v2"]["pac_mean"] == approx(1 / 3)


def test_pac_k_cut_and_window(loaded: Store) -> None:
    # k=5, 48 h: A {i1 (25 h), i2, i5} -> 3/5; B 1/5; C 4 items, {i3, i6} -> 2/5; F 0.
    r = loaded.pac(T0, T0 + DAY, k=5, window_hours=48)
    assert r["pac_mean"] == approx((3 / 5 + 1 / 5 + 2 / 5 + 0) / 4)
    assert r["pac_micro"] == approx(6 / 14)
    assert r["total_recommended"] == 5 + 2 + 4 + 3


def test_pac_filters(loaded: Store) -> None:
    nn = loaded.pac(T0, T0 + DAY, k=3, engine="nn")
    assert nn["impressions"] == 2 and nn["empty_lists"] == 1 and nn["pac_mean"] == approx(1 / 3)
    ios = loaded.pac(T0, T0 + DAY, k=3, platform="ios")
    assert ios["impressions"] == 1 and ios["pac_mean"] == approx(1 / 3)
    dislikes = loaded.pac(T0, T0 + DAY, k=3, action_types={"dislike"})
    assert dislikes["pac_mean"] == approx((1 / 3) / 4) and dislikes["pac_micro"] == approx(1 / 11)
    clicks = loaded.pac(T0, T0 + DAY, k=3, action_types={"click"})  # C's add_to_playlist no longer counts
    assert clicks["pac_mean"] == approx((1 / 3 + 1 / 3) / 4) and clicks["pac_micro"] == approx(2 / 11)
    everything = loaded.pac(k=3)  # no time range: list E (u4 clicked i7) joins -> 1/3
    assert everything["impressions"] == 5
    assert everything["pac_mean"] == approx((1 / 3 + 1 / 3 + 1 / 3 + 0 + 1 / 3) / 5)
    assert everything["pac_micro"] == approx(4 / 14)
    assert loaded.pac(T0 + 3 * DAY, T0 + 4 * DAY)["pac_mean"] is None


def test_replay_first_day(loaded: Store) -> None:
    # A: u1 later did i2, i5, i9 (engagements) and watched i3 (event) -> top3 hits {i2, i3} = 2/3.
    # B: u2 clicked i1; skip and a rating of 2 are not positives -> 1/2.
    # C: u3 added i3, clicked i6, played i5 (the view of i5 came before the list) -> {i3, i5} = 2/3.
    # F: u5 watched i2 (no engagement) -> 1/3, not clicked.
    r = loaded.replay(T0, T0 + DAY, k=3, window_hours=24)
    assert r["impressions"] == 4
    assert r["precision_at_k"] == approx((2 / 3 + 1 / 2 + 2 / 3 + 1 / 3) / 4)
    assert r["hit_rate_at_k"] == approx(1.0)
    assert r["ctr"] == approx(3 / 4)
    assert r["hits"] == 6 and r["recommended"] == 11
    assert r["by_engine"]["nn"]["precision_at_k"] == approx(2 / 3)
    assert r["by_engine"]["popular"]["precision_at_k"] == approx((1 / 2 + 1 / 3) / 2)
    assert r["by_engine"]["popular"]["ctr"] == approx(1 / 2)
    assert r["by_model_version"]["v2"]["hits"] == 2


def test_replay_short_window(loaded: Store) -> None:
    # 180 s: A keeps i2 (i3 watched at +500 is too late) -> 1/3; B 1/2; C i3 at +100 -> 1/3; F i2 at +100 -> 1/3.
    r = loaded.replay(T0, T0 + DAY, k=3, window_hours=180 / 3600)
    assert r["precision_at_k"] == approx((1 / 3 + 1 / 2 + 1 / 3 + 1 / 3) / 4)
    assert r["ctr"] == approx(3 / 4)


def test_summary(loaded: Store) -> None:
    s = loaded.summary(T0, T0 + DAY)
    assert s["requests"] == 5
    assert s["requests_per_minute"] == approx(5 / 1440)
    assert s["unique_users"] == 4
    # latencies 10, 20, 30, 40, 50: p95 at rank 0.95*4 = 3.8 -> 40 + 0.8*10; p99 -> 40 + 0.96*10
    assert s["latency_ms"] == {"mean": approx(30), "p50": approx(30), "p95": approx(48), "p99": approx(49.6)}
    assert s["fallback_rate"] == approx(3 / 5) and s["fallbacks"] == 3
    assert s["items_recommended"] == 6 and s["catalogue_size"] == 10 and s["coverage"] == approx(0.6)
    pop = s["by_endpoint"]["/popular"]
    assert pop["requests"] == 2 and pop["fallback_rate"] == approx(1.0)
    assert pop["latency_ms"] == {"mean": approx(35), "p50": approx(35), "p95": approx(48.5), "p99": approx(49.7)}
    assert s["by_endpoint"]["/recommendations"]["fallback_rate"] == approx(0.0)
    # coverage against the serving catalogue instead of the items table: {i1, i2} of {i1, i2, i7}
    assert loaded.summary(T0, T0 + DAY, catalogue={"i1": {}, "i2": {}, "i7": {}})["coverage"] == approx(2 / 3)


def test_engagement_outside_list_is_flagged(loaded: Store) -> None:
    rows = loaded.page(t.engagements, limit=100)["rows"]
    flagged = [(r["item_id"], r["in_list"], r["rank"]) for r in rows if r["recset_id"] == RECSETS["A"]]
    assert ("i9", False, None) in flagged and ("i5", True, 5) in flagged and ("i2", True, 2) in flagged


def test_an_explicit_weight_decides_a_positive_for_replay_as_for_training(store: Store) -> None:
    """Replay counts an online event as a positive exactly when training does, explicit ``weight`` included."""
    rid = sc.show_list(store, user="w", items=("a", "b", "c", "d"), ts=T0)
    store.record_events(sc.EXPLICIT_WEIGHT_EVENTS)
    trained = to_positives(sc.event_log(sc.EXPLICIT_WEIGHT_EVENTS), store.event_weights, store.rating_threshold)
    assert sorted(trained.item_id) == ["a", "d"]
    replayed = store.interaction_records(None, None)
    assert sorted(r.item_id for r in replayed) == sorted(trained.item_id)
    r = store.replay(T0, T0 + DAY, k=4, window_hours=1)
    assert r["impressions"] == 1 and r["hits"] == 2 and r["precision_at_k"] == approx(2 / 4)
    assert r["clicked_lists"] == 0 and store.get_impression(rid)["user_id"] == "w"  # events, not engagements


def test_pac_and_replay_echo_their_filters_and_default_to_positive_action_types(loaded: Store) -> None:
    positive = sorted(a for a, w in loaded.event_weights.items() if w > 0)
    for result in (loaded.pac(T0, T0 + DAY, engine="nn"), loaded.replay(T0, T0 + DAY, engine="nn")):
        assert list(result)[:5] == ["start_ts", "end_ts", "engine", "platform", "action_types"]
        assert result["start_ts"] == T0 and result["end_ts"] == T0 + DAY and result["engine"] == "nn"
        assert result["platform"] is None and result["action_types"] == positive
    assert "dislike" not in positive and "skip" not in positive and "rating" in positive
    assert loaded.replay(T0, T0 + DAY, action_types={"like", "click"})["action_types"] == ["click", "like"]
