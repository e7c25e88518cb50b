"""Seeding users, items and interactions from a training log, keeping online-only users."""

from __future__ import annotations

import sqlalchemy as sa

from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc


def test_seed_replaces_and_keeps_online_users(store: Store) -> None:
    store.record_events([("online-only", "i1", "view", sc.T0, None, None, None)])
    counts = store.seed(sc.seed_log(), sc.catalogue(5))
    assert counts == {"users": 2, "items": 5, "interactions": 3, "online_users": 1, "online_items": 0}
    assert store.count(t.interactions) == 3
    counts = store.seed(sc.seed_log(), sc.catalogue(4))  # re-seed: children deleted first, nothing doubled
    assert counts["items"] == 4 and store.count(t.interactions) == 3 and store.count(t.items) == 4
    with store.engine.connect() as conn:
        src = dict(conn.execute(sa.select(t.users.c.user_id, t.users.c.source)).all())
        item = conn.execute(sa.select(t.items).where(t.items.c.item_id == "i2")).mappings().one()
        inter = conn.execute(sa.select(t.interactions).where(t.interactions.c.event == "rating")).mappings().one()
    assert src == {"u1": "seed", "u2": "seed", "online-only": "online"}
    assert item["title"] == "Item 2" and item["genres"] == ["Drama"] and item["year"] == 2002
    assert inter["rating"] == 5.0 and inter["weight"] is None and inter["platform"] is None
