"""The positive rule (``PositiveRule``), aggregation into positives (weights, rating threshold, latest ts),
weight parsing, ID maps, datasets."""

from __future__ import annotations

import numpy as np
import pytest

from app.config import DEFAULT_EVENT_WEIGHTS
from app.data.aggregate import PositiveRule, parse_weights, to_positives
from app.data.dataset import build_dataset
from app.data.types import STRING_COLUMNS, Coded, EventLog


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


@pytest.mark.parametrize(("event", "rating", "weight", "expected"), WEIGHT_CASES)
def test_positive_rule_weight(event, rating, weight, expected):
    rule = PositiveRule()
    assert rule.weight(event, rating, weight) == expected
    assert rule.is_positive(event, rating, weight) is (expected > 0)


def test_positive_rule_types_and_custom_settings():
    rule = PositiveRule({"click": 1.0, "rating": 2.0, "skip": 0.0}, rating_threshold=3.0)
    assert rule.positive_types == {"click", "rating"}  # skip weighs 0; what an engagement counts as a hit
    assert rule.weight("rating", 3.0) == 2.0 and rule.weight("rating", 2.9) == 0.0
    assert rule.weight("view") == 0.0  # not in these weights
    assert PositiveRule().positive_types == {k for k, w in DEFAULT_EVENT_WEIGHTS.items() if w > 0}


def test_event_weights_agree_with_weight_row_by_row():
    rows = [("u", f"i{n}", e, 100 + n, r, w) for n, (e, r, w, _) in enumerate(WEIGHT_CASES)]
    log_ = event_log(rows + ROWS)  # None and NaN both become the log's NaN
    for rule in (PositiveRule(), PositiveRule({"view": 2.0, "rating": 1.0}, rating_threshold=3.0)):
        vectorised = rule.event_weights(log_)
        one_by_one = [
            rule.weight(str(e), float(r), float(w))
            for e, r, w in zip(log_.event, log_.rating, log_.weight, strict=False)
        ]
        assert vectorised.dtype == np.float32 and vectorised.tolist() == one_by_one
    assert PositiveRule().event_weights(log_)[: len(WEIGHT_CASES)].tolist() == [c[3] for c in WEIGHT_CASES]


def test_positives_hand_computed():
    pos = to_positives(event_log(ROWS))
    assert as_dict(pos) == {
        ("alice", "x"): (7.0, 300),
        ("alice", "z"): (4.0, 160),
        ("bob", "y"): (4.5, 400),
    }
    assert list(zip(pos.user_id, pos.item_id, strict=False)) == [("alice", "x"), ("alice", "z"), ("bob", "y")]  # sorted
    assert pos.weight.dtype == np.float32 and pos.ts.dtype == np.int64


def coded_log(log_, extra="zz-unused"):
    """The same log with every string column as codes the way the reader gives them: names in first-seen
    order, plus a name no row uses (a value seen only on a rejected line)."""
    columns = {}
    for column in STRING_COLUMNS:
        values = getattr(log_, column).tolist()
        names = [*dict.fromkeys(values), extra]
        table = np.empty(len(names), dtype=object)
        table[:] = names
        columns[column] = Coded(np.array([names.index(v) for v in values], np.int32), table)
    return EventLog(ts=log_.ts, rating=log_.rating, weight=log_.weight, **columns)


def test_coded_log_aggregates_and_reads_like_the_plain_one():
    plain = event_log(ROWS)
    coded = coded_log(plain, extra="aaa-unused")  # sorts first: must not shift any index
    for column in STRING_COLUMNS:
        assert getattr(coded, column).tolist() == getattr(plain, column).tolist()
        assert getattr(coded, column).dtype == object
    for threshold in (3.0, 4.0):
        a, b = to_positives(plain, rating_threshold=threshold), to_positives(coded, rating_threshold=threshold)
        assert a.user_id.tolist() == b.user_id.tolist() and a.item_id.tolist() == b.item_id.tolist()
        assert a.weight.tolist() == b.weight.tolist() and a.ts.tolist() == b.ts.tolist()
        da, db = build_dataset(a), build_dataset(b)
        assert da.users.ids == db.users.ids and da.user_idx.tolist() == db.user_idx.tolist()
    # a plain log gives its codes too
    users = plain.coded("user_id")
    assert users.values().tolist() == plain.user_id.tolist()


def test_rating_threshold_and_custom_weights():
    pos = to_positives(event_log(ROWS), rating_threshold=3.0)
    assert as_dict(pos)[("alice", "y")] == (4.0, 150)  # 3 >= 3 now counts
    pos = to_positives(event_log(ROWS), rating_threshold=5.0)
    assert ("alice", "z") not in as_dict(pos)
    assert as_dict(pos)[("bob", "y")] == (4.5, 400)
    weights = {**DEFAULT_EVENT_WEIGHTS, "view": 0.0, "like": 10.0, "rating": 1.0}
    assert as_dict(to_positives(event_log(ROWS), weights)) == {
        ("alice", "x"): (12.0, 300),  # 0 + 10 + 2; the view still carries ts 100 but 300 is the latest
        ("alice", "z"): (1.0, 160),
        ("bob", "y"): (1.5, 400),  # the explicit weight overrides the view's 0
    }
    # event types missing from the mapping are never positives
    assert as_dict(to_positives(event_log(ROWS), {"view": 1.0})) == {
        ("alice", "x"): (1.0, 100),
        ("bob", "y"): (0.5, 400),
    }


def test_no_positives_gives_empty():
    pos = to_positives(event_log([("u", "i", "rating", 100, 1.0, None)]))
    assert len(pos) == 0
    ds = build_dataset(pos)
    assert (ds.n_users, ds.n_items, ds.matrix().shape) == (0, 0, (0, 0))


def test_parse_weights(tmp_path):
    assert parse_weights(None) == DEFAULT_EVENT_WEIGHTS
    assert parse_weights("") == DEFAULT_EVENT_WEIGHTS
    merged = parse_weights('{"view": 0.5, "purchase": 10}')
    assert merged["view"] == 0.5 and merged["purchase"] == 10.0 and merged["like"] == DEFAULT_EVENT_WEIGHTS["like"]
    f = tmp_path / "w.json"
    f.write_text('{"like": 6}')
    assert parse_weights(str(f))["like"] == 6.0
    with pytest.raises(ValueError, match="neither a JSON object nor an existing JSON file"):
        parse_weights("missing.json")
    with pytest.raises(ValueError, match="invalid JSON"):
        parse_weights('{"view": }')
    with pytest.raises(ValueError, match="expected a JSON object"):
        f.write_text("[1, 2]")
        parse_weights(str(f))
    with pytest.raises(ValueError, match="'view' must be a number >= 0"):
        parse_weights('{"view": -1}')
    with pytest.raises(ValueError, match="must be a number"):
        parse_weights('{"view": "high"}')
