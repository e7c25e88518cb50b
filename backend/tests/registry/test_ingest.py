"""New data for a retraining run: logs and stored service events, validated, batched once, never twice."""

from __future__ import annotations

import orjson

from app.registry.ingest import batch_files, ingest_new, load_manifest
from app.store import Store
from tests.registry.helpers import write_jsonl


def store_events(url: str, rows: list[tuple]) -> None:
    with Store.from_url(url) as store:
        store.start()
        store.record_events(rows)


def test_logs_and_database_events_are_ingested_once(tmp_path):
    root = tmp_path / "reg"
    write_jsonl(
        tmp_path / "new" / "a.jsonl",
        [
            {"user_id": "u1", "item_id": "i1", "event": "play", "ts": 1_700_000_000},
            {"user_id": "u2", "item_id": "i2", "event": "rating", "rating": 5, "ts": "2023-11-14T22:13:21Z"},
            b"not json",
            {"user_id": "u3", "event": "play", "ts": 1_700_000_000},  # no item_id
        ],
    )
    url = f"sqlite:///{tmp_path / 'service.db'}"
    store_events(
        url,
        [("u9", "i9", "like", 1_700_000_100, None, None, "ios"), ("u1", "i2", "watch", 1_700_000_200, None, 2.5, None)],
    )

    first = ingest_new(root, "run1", [tmp_path / "new"], url)
    assert (first.accepted, first.rejected, len(first.log)) == (4, 2, 4)
    assert sum(first.reasons.values()) == 2 and "invalid_json" in first.reasons
    rejects = [orjson.loads(x) for x in open(first.rejects_path.split(", ")[0], "rb")]
    assert [r["line"] for r in rejects] == [3, 4]
    assert first.log.user_id.tolist() == ["u1", "u2", "u9", "u1"]
    assert first.log.ts.tolist()[1] == 1_700_000_001  # ISO 8601 normalised to Unix seconds
    assert first.last_event_id == 2
    batch = [orjson.loads(x) for x in first.batch_file.read_bytes().splitlines()]
    assert batch[2] == {"user_id": "u9", "item_id": "i9", "event": "like", "ts": 1_700_000_100, "platform": "ios"}
    assert batch[3]["weight"] == 2.5 and "rating" not in batch[3]

    # The same file again (even renamed) and no new database rows: nothing is ingested twice.
    (tmp_path / "new" / "a.jsonl").rename(tmp_path / "new" / "renamed.jsonl")
    second = ingest_new(root, "run2", [tmp_path / "new"], url)
    assert len(second.log) == 0 and second.skipped == [str(tmp_path / "new" / "renamed.jsonl")]
    store_events(url, [("u4", "i4", "play", 1_700_000_300, None, None, None)])
    third = ingest_new(root, "run3", [], url)
    assert third.log.user_id.tolist() == ["u4"] and third.sources[0]["first_id"] == 3
    assert [p.name for p in batch_files(root)] == ["batch-run1.jsonl", "batch-run3.jsonl"]
    assert load_manifest(root)["last_event_id"] == 3


def test_a_batch_without_a_manifest_entry_is_ignored_and_removed(tmp_path):
    """A crash between writing the batch and committing the manifest: the batch never counts."""
    root = tmp_path / "reg"
    write_jsonl(root / "data" / "batch-crashed.jsonl", [{"user_id": "u1", "item_id": "i1", "event": "play", "ts": 1}])
    assert batch_files(root) == []
    log = write_jsonl(tmp_path / "a.jsonl", [{"user_id": "u1", "item_id": "i1", "event": "play", "ts": 1_700_000_000}])
    ingest_new(root, "run1", [log])
    assert not (root / "data" / "batch-crashed.jsonl").exists()
    assert [p.name for p in batch_files(root)] == ["batch-run1.jsonl"]


def test_database_without_events_table_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="no 'events' table"):
        ingest_new(tmp_path / "reg", "run1", [], f"sqlite:///{tmp_path / 'other.db'}")


def test_engagements_are_ingested_once_and_withdrawn_ones_never(tmp_path):
    """Engagements become training events (event = action type, ts in whole seconds); a withdrawal and the
    engagement it withdraws (read in the same run) are left out; an earlier run's ingested one is counted."""
    import sqlalchemy as sa

    from app.store import schema as t
    from app.store.db import create_db_engine
    from tests.store import scenario as sc

    root = tmp_path / "reg"
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with Store.from_url(url) as store:
        store.start()
        rid = sc.show_list(store, items=("a", "b", "c"))
        like = store.record_engagement(rid, "u1", "a", "like", platform="web", ts=1_700_000_000.75)["id"]
        store.record_engagement(rid, "u1", "b", "click", ts=1_700_000_010)
        store.record_engagement(rid, "u1", "c", "teleport", ts=1_700_000_020)  # unknown to the weights: rejected
        undone = store.record_engagement(rid, "u1", "c", "like", ts=1_700_000_030)["id"]
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:  # the user pressed Like on c again: the withdrawal of that like
            row = dict(recset_id=rid, user_id="u1", item_id="c", action_type="like", ts=1_700_000_040.0)
            row.update(in_list=True, rank=3, received_at=1_700_000_040.0, withdraws=undone)
            conn.execute(t.engagements.insert().values(**row))
    finally:
        engine.dispose()
    store_events(url, [("u9", "i9", "play", 1_700_000_100, None, None, None)])

    first = ingest_new(root, "run1", [], url)
    assert first.log.event.tolist() == ["play", "like", "click"]  # events first, then engagements by id
    assert first.log.ts.tolist() == [1_700_000_100, 1_700_000_000, 1_700_000_010]
    assert first.log.platform.tolist()[1] == "web"
    assert first.accepted_by_source == {"logs": 0, "events": 1, "engagements": 2}
    assert first.rejected == 1 and first.engagements_left_out == {
        "withdrawals": 1,
        "withdrawn": 1,
        "withdrawn_after_ingest": 0,
    }
    assert first.online_through() == {"events": 1, "engagements": 5}
    assert load_manifest(root)["last_engagement_id"] == 5
    summary = first.summary()
    assert (summary["online_events"], summary["online_engagements"]) == (1, 2)

    # A withdrawal of an engagement ingested by the earlier run: nothing new to train on, and it is counted.
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            row = dict(recset_id=rid, user_id="u1", item_id="a", action_type="like", ts=1_700_000_050.0)
            row.update(in_list=True, rank=1, received_at=1_700_000_050.0, withdraws=like)
            conn.execute(t.engagements.insert().values(**row))
            assert conn.execute(sa.select(sa.func.max(t.engagements.c.id))).scalar_one() == 6
    finally:
        engine.dispose()
    second = ingest_new(root, "run2", [], url)
    assert len(second.log) == 0 and second.engagements_left_out["withdrawn_after_ingest"] == 1
    assert second.online_through() == {"events": 1, "engagements": 6}
