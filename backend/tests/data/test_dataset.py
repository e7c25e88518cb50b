"""Indexing positives: ID maps, the users x items matrix, given maps, stable indices, reading a log whole."""

from __future__ import annotations

import numpy as np
import orjson

from app.data.aggregate import to_positives
from app.data.dataset import build_dataset, load_dataset
from app.data.idmap import IdMap
from app.data.types import EventLog


def event_log(rows):
    """rows: (user, item, event, ts, rating|None, weight|None)."""

    def objs(values):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    u, i, e, t, r, w = zip(*rows, strict=False)
    nan = float("nan")
    return EventLog(
        user_id=objs(list(u)),
        item_id=objs(list(i)),
        event=objs(list(e)),
        ts=np.array(t, dtype=np.int64),
        rating=np.array([nan if x is None else x for x in r], dtype=np.float32),
        weight=np.array([nan if x is None else x for x in w], dtype=np.float32),
        platform=objs([""] * len(rows)),
    )


ROWS = [
    ("alice", "x", "view", 100, None, None),  # 1
    ("alice", "x", "like", 300, None, None),  # 4
    ("alice", "x", "play", 200, None, None),  # 2   -> alice/x: 7, ts 300
    ("alice", "y", "rating", 150, 3.0, None),  # below threshold: not a positive
    ("alice", "z", "rating", 160, 4.0, None),  # 4 -> alice/z: 4, ts 160
    ("bob", "y", "rating", 170, 5.0, None),  # 4
    ("bob", "y", "view", 400, None, 0.5),  # explicit weight 0.5 -> bob/y: 4.5, ts 400
    ("bob", "x", "dislike", 500, None, None),  # weight 0: never a positive
    ("carol", "x", "skip", 600, None, None),  # carol has no positives at all
]


def as_dict(pos):
    return {
        (u, i): (float(w), int(t)) for u, i, w, t in zip(pos.user_id, pos.item_id, pos.weight, pos.ts, strict=False)
    }


NAN = float("nan")

#: (event, rating, weight) -> weight under the default weights and threshold 4 (worked by hand).
WEIGHT_CASES = [
    ("watch", None, None, 3.0),  # a plain type: its type weight
    ("like", 1.0, None, 4.0),  # a rating value on another type is ignored
    ("dislike", None, None, 0.0),  # a weight-0 type is never a positive by itself
    ("dislike", None, 2.5, 2.5),  # ... but an explicit weight overrides the type weight
    ("view", None, 0.0, 0.0),  # an explicit 0 overrides a positive type weight
    ("view", None, NAN, 1.0),  # NaN (a log's "no weight") is no explicit weight
    ("rating", 4.5, None, 4.0),  # above the threshold: the rating type's weight
    ("rating", 4.0, None, 4.0),  # at the threshold counts
    ("rating", 3.5, None, 0.0),  # below it does not
    ("rating", 3.0, 5.0, 0.0),  # below it, even with an explicit weight
    ("rating", 5.0, 0.5, 0.5),  # above it, the explicit weight replaces the type's
    ("rating", None, None, 0.0),  # a rating event without a rating value
    ("rating", NAN, 2.0, 0.0),  # ... NaN as in a log
    ("teleport", None, None, 0.0),  # a type missing from the weights weighs 0
    ("teleport", None, 1.5, 1.5),  # ... unless the event carries a weight
]


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
