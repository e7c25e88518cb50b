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
