"""Impressions: rows written in batches, read back as written, counted for ``/metrics``."""

from __future__ import annotations

from app.store import Store
from app.store import schema as t
from app.store.impressions import IMPRESSION_COLUMNS, impression_row
from tests.store import scenario as sc


def test_impressions_are_batched_and_flushed(store: Store) -> None:
    ids = [sc.show_list(store, platform="web", latency_ms=1.5) for _ in range(150)]
    assert store.flush()
    assert store.count(t.rec_impressions) == 150
    row = store.get_impression(ids[7])
    assert row["item_ids"] == ["a", "b", "c"] and row["scores"] == [0.9, 0.5, 0.1]
    assert row["platform"] == "web" and row["is_fallback"] is False and row["latency_ms"] == 1.5


def test_impression_counts_snapshot_is_a_copy_by_endpoint_engine_and_fallback(store: Store) -> None:
    sc.show_list(store)
    sc.show_list(store, is_fallback=True)
    sc.show_list(store, is_fallback=True)
    snapshot = store.impression_counts_snapshot()
    assert snapshot == {("/recommendations", "nn", False): 1, ("/recommendations", "nn", True): 2}
    sc.show_list(store)
    assert snapshot[("/recommendations", "nn", False)] == 1  # taken then, not a view of the live counters
    assert store.impression_counts_snapshot()[("/recommendations", "nn", False)] == 2


def test_impression_row_truncates_and_encodes() -> None:
    row = impression_row("r", "", "e" * 80, "nn", None, [1, "b"], [0.5, float("nan")], platform="", ts=7)
    assert dict(zip(IMPRESSION_COLUMNS, row, strict=False)) == {
        "recset_id": "r",
        "user_id": None,
        "endpoint": "e" * 64,
        "engine": "nn",
        "model_version": None,
        "item_ids": '["1","b"]',
        "scores": "[0.5,null]",
        "platform": None,
        "is_fallback": False,
        "latency_ms": None,
        "ts": 7.0,
    }
