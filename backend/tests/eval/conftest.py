"""Small hand-built datasets for the eval tests (no files)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.data.idmap import IdMap
from app.data.types import Dataset


def make_dataset(rows: list[tuple[str, str, int]], weight: float = 1.0) -> Dataset:
    """Dataset from (user, item, ts) triples; ID maps sorted, so "u0" -> 0, "i0" -> 0, ..."""
    users = IdMap(sorted({r[0] for r in rows}))
    items = IdMap(sorted({r[1] for r in rows}))
    return Dataset(
        users,
        items,
        users.indices(r[0] for r in rows).astype(np.int32),
        items.indices(r[1] for r in rows).astype(np.int32),
        np.full(len(rows), weight, dtype=np.float32),
        np.array([r[2] for r in rows], dtype=np.int64),
    )


@pytest.fixture()
def log_files(tmp_path):
    """40 users in two taste groups over 20 items, ratings spread over time; a catalogue with genres."""
    rng = np.random.default_rng(0)
    lines = []
    for u in range(40):
        block = 0 if u < 20 else 10
        for i in rng.permutation(10)[:7]:
            t = 1_600_000_000 + int(rng.integers(0, 1_000_000))  # users interleaved in time
            lines.append({"user_id": f"u{u}", "item_id": f"i{block + i}", "event": "rating", "rating": 5, "ts": t})
        lines.append({"user_id": f"u{u}", "item_id": f"i{19 - block}", "event": "rating", "rating": 2, "ts": t + 1})
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    items = tmp_path / "items.jsonl"
    items.write_bytes(
        b"\n".join(
            orjson.dumps({"item_id": f"i{i}", "title": f"Item {i}", "genres": ["A" if i < 10 else "B"]})
            for i in range(20)
        )
        + b"\n"
    )
    return data, items
