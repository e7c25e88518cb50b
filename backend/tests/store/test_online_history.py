"""The store's reads behind the online history, and withdrawals (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid

import pytest
import sqlalchemy as sa

from app.store import NotFound, Store
from app.store import schema as t


def _shown(store: Store, user: str = "u1") -> str:
    rid = str(uuid.uuid4())
    store.log_impression(rid, user, "/recommendations", "nn", "v1", ["a", "b", "c"], [3, 2, 1])
    return rid


def test_user_activity_is_events_and_active_engagements_newest_first(store: Store) -> None:
    store.record_events([("u1", "x", "rating", 100, 2.0, None, None), ("u2", "y", "like", 100, None, None, None)])
    rid = _shown(store)
    store.record_engagement(rid, "u1", "a", "like", ts=200)
    store.record_engagement(rid, "u1", "b", "click", ts=300)
    store.record_engagement(rid, "u1", "b", "click", ts=301, withdraw=True)
    got = store.user_activity("u1")
    assert [(a.item_id, a.event, a.ts) for a in got] == [("a", "like", 200.0), ("x", "rating", 100.0)]
    assert got[1].rating == 2.0


def test_user_activity_starts_after_the_rows_the_model_was_trained_through(store: Store) -> None:
    store.record_events([("u1", "x", "view", 100, None, None, None)])
    with store.engine.connect() as conn:
        first_event = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar_one()
    store.record_events([("u1", "y", "view", 101, None, None, None)])
    rid = _shown(store)
    first = store.record_engagement(rid, "u1", "a", "like", ts=200)
    store.record_engagement(rid, "u1", "b", "like", ts=201)
    assert {a.item_id for a in store.user_activity("u1")} == {"x", "y", "a", "b"}
    newer = store.user_activity("u1", after_event_id=first_event, after_engagement_id=first["id"])
    assert {a.item_id for a in newer} == {"y", "b"}


def test_users_changed_since_sees_events_engagements_and_withdrawals(store: Store) -> None:
    start = time.time() - 1
    store.record_events([("u9", "x", "view", 100, None, None, None)])
    rid = _shown(store, "u8")
    store.record_engagement(rid, "u8", "a", "like")
    assert store.users_changed_since(start) == {"u8", "u9"}
    assert store.users_changed_since(time.time() + 60) == set()


def test_a_withdrawal_needs_something_to_withdraw(store: Store) -> None:
    rid = _shown(store)
    with pytest.raises(NotFound, match="nothing to withdraw"):
        store.record_engagement(rid, "u1", "a", "like", withdraw=True)


def test_like_and_dislike_withdraw_each_other(store: Store) -> None:
    rid = _shown(store)
    like = store.record_engagement(rid, "u1", "a", "like", ts=1)
    dislike = store.record_engagement(rid, "u1", "a", "dislike", ts=2)
    assert dislike["withdrew"] == [like["id"]]
    assert [a.event for a in store.user_activity("u1")] == ["dislike"]
    again = store.record_engagement(rid, "u1", "a", "like", ts=3)
    assert again["withdrew"] == [dislike["id"]]
    assert [a.event for a in store.user_activity("u1")] == ["like"]


def test_a_withdrawn_like_is_no_hit_for_pac(store: Store) -> None:
    rid = _shown(store)
    store.record_engagement(rid, "u1", "a", "like")
    assert store.flush(5)
    assert store.pac()["total_hits"] == 1
    store.record_engagement(rid, "u1", "a", "like", withdraw=True)
    assert store.pac()["total_hits"] == 0


def test_the_reload_generation_counts_every_request(store: Store) -> None:
    assert store.reload_generation() == 0
    assert store.request_reload() == 1 and store.request_reload() == 2
    assert store.reload_generation() == 2


def test_prune_deletes_old_lists_with_their_engagements_and_says_so_in_pac(store: Store) -> None:
    now = time.time()
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    store.log_impression(old, "u1", "/recommendations", "nn", "v1", ["a"], [1.0], ts=now - 40 * 86_400)
    store.log_impression(new, "u1", "/recommendations", "nn", "v1", ["a"], [1.0], ts=now - 86_400)
    store.record_engagement(old, "u1", "a", "like")  # received now, but on a list that is pruned
    store.record_engagement(new, "u1", "a", "like")
    store.record_events([("u1", "x", "view", 100, None, None, None)])
    assert store.flush(5)
    assert store.pac()["impressions"] == 2 and "retention_note" not in store.pac()
    result = store.prune(30)
    assert result["deleted"] == {"impressions": 1, "engagements": 1, "events": 0}  # events: training data, kept
    assert store.pac()["impressions"] == 1 and "were pruned" in store.pac()["retention_note"]
    assert "retention_note" not in store.pac(start_ts=now - 2 * 86_400)
    assert store.prune(30, events_keep_days=0.5, now=now + 86_400)["deleted"]["events"] == 1
