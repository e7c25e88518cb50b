"""Engagements and events: synchronous writes, 404/422 cases, hits, idempotency keys, new online users and items."""

from __future__ import annotations

import uuid

import pytest

from app.store import Conflict, NotFound, Store
from app.store import schema as t
from tests.store import scenario as sc


def test_engagement_for_impression_still_queued(db_url: str) -> None:
    s = Store.from_url(db_url, batch_size=1000, flush_seconds=60).start()
    try:
        rid = sc.show_list(s)
        assert s.writer.pending(rid) is not None
        out = s.record_engagement(rid, "u1", "b", "click")
        assert out["in_list"] and out["rank"] == 2 and out["counts_as_hit"]
        assert s.writer.pending(rid) is None and s.count(t.engagements) == 1
    finally:
        s.close()


def test_engagement_errors_and_flags(store: Store) -> None:
    rid = sc.show_list(store)
    with pytest.raises(NotFound):
        store.record_engagement(str(uuid.uuid4()), "u1", "a", "click")
    with pytest.raises(Conflict) as exc:
        store.record_engagement(rid, "u2", "a", "click")
    assert exc.value.field == "user_id"
    off = store.record_engagement(rid, "u1", "zzz", "click")
    assert off["in_list"] is False and off["rank"] is None and off["counts_as_hit"] is False
    dis = store.record_engagement(rid, "u1", "a", "dislike")
    assert dis["in_list"] is True and dis["counts_as_hit"] is False
    anon = sc.show_list(store, user=None)  # a /popular list without a user accepts any user's engagement
    assert store.record_engagement(anon, "whoever", "a", "click")["in_list"]
    assert store.count(t.engagements) == 3


def test_idempotency_key(store: Store) -> None:
    rid = sc.show_list(store)
    first = store.record_engagement(rid, "u1", "a", "click", request_key="k-1")
    again = store.record_engagement(rid, "u1", "a", "click", request_key="k-1")
    assert first["duplicate"] is False and again["duplicate"] is True and again["id"] == first["id"]
    rows = [("u1", "x", "watch", sc.T0, None, None, "web")]
    e1 = store.record_events(rows, request_key="k-2")
    e2 = store.record_events(rows, request_key="k-2")
    assert e1["accepted"] == 1 and e2["duplicate"] is True
    assert store.count(t.engagements) == 1 and store.count(t.events) == 1


def test_events_record_new_users_and_items(store: Store) -> None:
    store.seed(sc.seed_log(), sc.catalogue(3))
    out = store.record_events(
        [
            ("u1", "i1", "watch", sc.T0, None, None, "web"),  # both known from the seed
            ("new-user", "i2", "click", sc.T0 + 5, None, None, None),
            ("new-user", "new-item", "rating", sc.T0 + 1, 5.0, None, "ios"),
        ]
    )
    assert out["accepted"] == 3 and out["new_user_ids"] == ["new-user"] and out["new_item_ids"] == ["new-item"]
    assert store.online_items() == ["new-item"]
    assert store.is_online_user("new-user") and not store.is_online_user("u1") and not store.is_online_user("nobody")
    # a second batch with the same user does not make it new again
    assert store.record_events([("new-user", "i3", "view", sc.T0 + 9, None, None, None)])["new_users"] == 0


def test_counts_as_hit_is_the_positive_type_rule(db_url: str) -> None:
    """An engagement is a hit when its type weighs > 0 (as PaC's default filter): a type missing from the
    weights is not, and the weights are the store's settings."""
    s = Store.from_url(db_url, event_weights={"click": 1.0, "rating": 4.0, "view": 0.0}).start()
    try:
        rid = sc.show_list(s)
        hit = {a: s.record_engagement(rid, "u1", "a", a)["counts_as_hit"] for a in ("click", "rating", "view", "share")}
        assert hit == {"click": True, "rating": True, "view": False, "share": False}
        assert s.action_types == {"click", "rating", "view"} and s.positive_rule.positive_types == {"click", "rating"}
    finally:
        s.close()
