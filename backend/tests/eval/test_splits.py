"""Filters, the global temporal split (tie handling) and leave-last-out, on datasets built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.eval.splits import (
    concat,
    evaluation_users,
    filter_positives,
    leave_last_out,
    make_split,
    temporal_split,
    tie_key,
)

from .conftest import make_dataset


def _pairs(d):
    return sorted(
        (d.users.id(int(u)), d.items.id(int(i)), int(t)) for u, i, t in zip(d.user_idx, d.item_idx, d.ts, strict=False)
    )


def test_filter_items_first_then_users():
    rows = [
        # item "a": 3 positives, "b": 3, "c": 1 (dropped with min_item=2)
        ("u1", "a", 1),
        ("u1", "b", 2),
        ("u1", "c", 3),
        ("u2", "a", 4),
        ("u2", "b", 5),
        ("u3", "a", 6),
        ("u3", "b", 7),
        # u4 has one positive on a kept item only -> dropped with min_user=2 after the item pass
        ("u4", "a", 8),
    ]
    d = make_dataset(rows)
    # a and b now have 4 and 3 positives; u4's "a" makes a = 4
    out, report = filter_positives(d, min_item=2, min_user=2)
    assert _pairs(out) == sorted(
        [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 4), ("u2", "b", 5), ("u3", "a", 6), ("u3", "b", 7)]
    )
    assert out.items.ids == ["a", "b"] and out.users.ids == ["u1", "u2", "u3"]
    assert (report.users_before, report.items_before, report.interactions_before) == (4, 3, 8)
    assert (report.users_after, report.items_after, report.interactions_after) == (3, 2, 6)


def test_filter_order_matters_user_pass_sees_item_pass():
    # u1 has 2 positives but one is on item "z" (1 positive) -> after the item pass u1 has 1 -> dropped
    rows = [("u1", "a", 1), ("u1", "z", 2), ("u2", "a", 3), ("u2", "b", 4), ("u3", "b", 5), ("u3", "a", 6)]
    out, report = filter_positives(make_dataset(rows), min_item=2, min_user=2)
    assert out.users.ids == ["u2", "u3"]
    assert report.interactions_after == 4


def test_temporal_split_never_splits_equal_timestamps():
    # 10 rows; train 0.5 -> position 5 has ts 5, so every ts-5 row (positions 4, 5, 6) goes to validation
    ts = [1, 2, 3, 4, 5, 5, 5, 8, 9, 10]
    rows = [(f"u{i % 3}", f"i{i}", t) for i, t in enumerate(ts)]
    s = temporal_split(make_dataset(rows), 0.5, 0.3)
    assert sorted(s.train.ts.tolist()) == [1, 2, 3, 4]
    # validation up to position 8 (ts 9) exclusive -> ts 5, 5, 5, 8
    assert sorted(s.validation.ts.tolist()) == [5, 5, 5, 8]
    assert sorted(s.test.ts.tolist()) == [9, 10]
    assert s.info["cutoffs"] == [5, 9]
    # all three parts share the ID maps
    assert s.train.users == s.test.users and s.train.items == s.validation.items


def test_temporal_split_rejects_bad_shares():
    d = make_dataset([("u", "i", 1)])
    with pytest.raises(ValueError):
        temporal_split(d, 0.9, 0.2)


def test_temporal_evaluated_users_need_history_and_a_test_positive():
    rows = [
        ("u0", "a", 1),
        ("u0", "b", 2),
        ("u0", "c", 9),  # history + test -> evaluated
        ("u1", "a", 3),
        ("u1", "b", 4),  # history only
        ("u2", "c", 8),
        ("u2", "a", 10),  # test only (no fitted history)
        ("u3", "b", 5),
        ("u3", "c", 6),
        ("u3", "a", 7),  # history + validation -> evaluated at test stage? no test row
    ]
    s = temporal_split(make_dataset(rows), 0.6, 0.1)  # 10 rows: train ts < 7, validation ts 7, test ts >= 8
    assert sorted(s.validation.ts.tolist()) == [7]
    _fm, _tm, users = s.stage_matrices("test")
    assert [s.users.id(int(u)) for u in users] == ["u0"]
    _fm, _tm, users = s.stage_matrices("validation")
    assert [s.users.id(int(u)) for u in users] == ["u3"]
    sizes = s.sizes()
    assert sizes["train"] == {"users": 3, "items": 3, "interactions": 6}
    assert sizes["validation"]["interactions"] == 1 and sizes["test"]["interactions"] == 3
    assert sizes["evaluated_users_test"] == 1 and sizes["evaluated_users_validation"] == 1


def test_leave_last_out_latest_is_test_second_latest_validation():
    rows = [
        # u0: latest c (30), then b (20)
        ("u0", "a", 10),
        ("u0", "b", 20),
        ("u0", "c", 30),
        ("u0", "d", 5),
        # u1: latest e, then a
        ("u1", "e", 30),
        ("u1", "a", 2),
        ("u1", "b", 1),
        # u2: a single positive -> test only
        ("u2", "a", 50),
    ]
    s = leave_last_out(make_dataset(rows))
    assert _pairs(s.test) == [("u0", "c", 30), ("u1", "e", 30), ("u2", "a", 50)]
    assert _pairs(s.validation) == [("u0", "b", 20), ("u1", "a", 2)]
    assert _pairs(s.train) == [("u0", "a", 10), ("u0", "d", 5), ("u1", "b", 1)]
    # u2 has no history, so only u0 and u1 are evaluated
    assert s.sizes()["evaluated_users_test"] == 2


def test_leave_last_out_ties_follow_the_seeded_tie_key_not_row_order():
    # u0 rated b, c and d in the same second (20): the one with the largest tie key is "latest".
    rows = [("u0", "a", 10), ("u0", "b", 20), ("u0", "c", 20), ("u0", "d", 20), ("u1", "a", 1), ("u1", "b", 2)]
    d = make_dataset(rows)
    for seed in (0, 1, 2, 3):
        keys = tie_key(np.zeros(3, dtype=np.int32), np.array([1, 2, 3]), seed)  # u0 is user 0; b, c, d are items 1-3
        by_key = [["b", "c", "d"][i] for i in np.argsort(keys)]
        s = leave_last_out(d, seed)
        assert _pairs(s.test)[0] == ("u0", by_key[-1], 20)
        assert _pairs(s.validation)[0] == ("u0", by_key[-2], 20)
        assert ("u0", "a", 10) in _pairs(s.train) and ("u0", by_key[0], 20) in _pairs(s.train)
        # the same rows in another order give the same split
        shuffled = make_dataset([rows[i] for i in np.random.default_rng(seed).permutation(len(rows))])
        assert _pairs(leave_last_out(shuffled, seed).test) == _pairs(s.test)
    # the key is reproducible and depends on the seed
    a = tie_key(np.array([0, 0]), np.array([1, 2]), 0)
    assert a.tolist() == tie_key(np.array([0, 0]), np.array([1, 2]), 0).tolist()
    assert a.tolist() != tie_key(np.array([0, 0]), np.array([1, 2]), 1).tolist()


def test_test_stage_fits_on_train_plus_validation():
    rows = [("u0", "a", 1), ("u0", "b", 2), ("u0", "c", 3), ("u1", "a", 1), ("u1", "c", 2)]
    s = make_split(make_dataset(rows), "leave-last-out")
    fitted, target = s.stage("test")
    assert len(fitted) == len(s.train) + len(s.validation) == 3
    assert _pairs(target) == [("u0", "c", 3), ("u1", "c", 2)]
    assert len(concat(s.train, s.validation)) == 3
    with pytest.raises(ValueError):
        make_split(make_dataset(rows), "random")


def test_evaluation_users_helper():
    import scipy.sparse as sp

    fitted = sp.csr_matrix(np.array([[1, 0], [0, 0], [1, 1]]))
    target = sp.csr_matrix(np.array([[0, 1], [1, 0], [0, 0]]))
    assert evaluation_users(fitted, target).tolist() == [0]
