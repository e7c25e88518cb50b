"""Reads for the service: a user's online positives by the training rule, online users, paged tables."""

from __future__ import annotations

from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc


def test_positive_items_for_user_follow_the_training_rule(store: Store) -> None:
    # dislike weighted 2 and an unknown type weighted 1.5 are positives; a view weighted 0 and a rating of 3 are not
    store.record_events(sc.EXPLICIT_WEIGHT_EVENTS)
    assert store.positive_items_for_user("w") == ["a", "d"]
    assert [e["weight"] for e in store.events_for_user("w")] == [2.0, 0.0, 5.0, 1.5]
    store.record_events(
        [("w", "b", "view", sc.T0 + 20, None, None, None), ("w", "c", "rating", sc.T0 + 21, 4.0, None, None)]
    )
    assert store.positive_items_for_user("w") == ["a", "d", "b", "c"]  # oldest first; a later plain view counts
    assert store.positive_items_for_user("w", limit=2) == ["b", "c"]  # only the last ``limit`` events


def test_page_clamps_limit_and_offset(store: Store) -> None:
    store.record_events([(f"u{n}", "i", "view", sc.T0 + n, None, None, None) for n in range(5)])
    page = store.page(t.users, order_by=[t.users.c.user_id], limit=0, offset=-3)
    assert (page["total"], page["limit"], page["offset"]) == (5, 1, 0) and page["rows"][0]["user_id"] == "u0"
    page = store.page(t.users, where=[t.users.c.user_id >= "u3"], order_by=[t.users.c.user_id], limit=10**6, offset=1)
    assert (page["total"], page["limit"], [r["user_id"] for r in page["rows"]]) == (2, 1_000, ["u4"])
    assert store.count(t.users) == 5 and store.catalogue_size() == 0  # online users and items are not the catalogue
