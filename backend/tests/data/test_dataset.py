"""Indexing positives: ID maps, the users x items matrix, given maps, stable indices, reading a log whole."""

from __future__ import annotations

import numpy as np
import orjson

from app.data.aggregate import to_positives
from app.data.dataset import build_dataset, load_dataset
from app.data.idmap import IdMap
from tests.data.test_aggregate import ROWS, event_log


def test_build_dataset_id_maps_and_matrix():
    ds = build_dataset(to_positives(event_log(ROWS)))
    assert ds.users.ids == ["alice", "bob"] and ds.items.ids == ["x", "y", "z"]
    assert ds.user_idx.tolist() == [0, 0, 1] and ds.item_idx.tolist() == [0, 2, 1]
    assert ds.user_idx.dtype == np.int32 and ds.item_idx.dtype == np.int32
    np.testing.assert_array_equal(ds.matrix().toarray(), [[7.0, 0.0, 4.0], [0.0, 4.5, 0.0]])
    assert ds.users.index("bob") == 1 and ds.items.id(2) == "z"


def test_build_dataset_with_given_maps_drops_unknown_and_keeps_catalogue_items():
    pos = to_positives(event_log(ROWS))
    ds = build_dataset(pos, users=IdMap(["bob", "alice"]), items=["w", "x", "y"])  # z not in the catalogue
    assert ds.users.ids == ["bob", "alice"] and ds.items.ids == ["w", "x", "y"]
    np.testing.assert_array_equal(ds.matrix().toarray(), [[0.0, 0.0, 4.5], [0.0, 7.0, 0.0]])
    assert len(ds) == 2


def test_id_maps_are_stable_across_file_order(tmp_path):
    lines = [
        orjson.dumps({"user_id": u, "item_id": i, "event": e, "ts": t, **({"rating": r} if r else {})})
        for u, i, e, t, r, _ in ROWS
        if _ is None
    ]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines))
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(reversed(lines)))
    ds_a = load_dataset(tmp_path / "a.jsonl").dataset
    ds_b = load_dataset(tmp_path / "b.jsonl").dataset
    assert ds_a.users == ds_b.users and ds_a.items == ds_b.items
    assert (ds_a.matrix() != ds_b.matrix()).nnz == 0


def test_load_dataset_weights_and_rejects(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"user_id": "u", "item_id": "a", "event": "purchase", "ts": 1700000000}\n'
        '{"user_id": "u", "item_id": "a", "event": "view", "ts": 1700000100}\n'
        '{"user_id": "u", "item_id": "b", "event": "rating", "ts": 1700000200, "rating": 3}\n'
        '{"user_id": "u", "item_id": "c", "event": "bogus", "ts": 1700000300}\n'
    )
    ds, _events, summary = load_dataset(
        path, weights={"purchase": 8.0}, rating_threshold=3.0, rejects_path=tmp_path / "rej.jsonl"
    )
    assert summary.reasons == {"unknown_event": 1}
    assert ds.items.ids == ["a", "b"]
    np.testing.assert_allclose(ds.weight, [9.0, 4.0])
    assert ds.ts.tolist() == [1700000100, 1700000200]
