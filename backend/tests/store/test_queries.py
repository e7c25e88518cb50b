"""Reads for the service: online users and items, counts and paged tables."""

from __future__ import annotations

from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc


def test_page_clamps_limit_and_offset(store: Store) -> None:
    store.record_events([(f"u{n}", "i", "view", sc.T0 + n, None, None, None) for n in range(5)])
    page = store.page(t.users, order_by=[t.users.c.user_id], limit=0, offset=-3)
    assert (page["total"], page["limit"], page["offset"]) == (5, 1, 0) and page["rows"][0]["user_id"] == "u0"
    page = store.page(t.users, where=[t.users.c.user_id >= "u3"], order_by=[t.users.c.user_id], limit=10**6, offset=1)
    assert (page["total"], page["limit"], [r["user_id"] for r in page["rows"]]) == (2, 1_000, ["u4"])
    assert store.count(t.users) == 5 and store.catalogue_size() == 0  # online users and items are not the catalogue
