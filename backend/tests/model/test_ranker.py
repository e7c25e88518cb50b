"""The ranker's reasons: path contributions against a hand-worked tree, and additive to the score."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.ranker import path_contributions, train_rankers

#: One tree: the root splits feature 1 (value 0.5), its left child feature 0 (value 0.2) into leaves
#: 0 (-1.0) and 1 (3.0); the right child is leaf 2 (2.0).
DUMP = {
    "tree_info": [
        {
            "num_leaves": 3,
            "tree_structure": {
                "split_feature": 1,
                "internal_value": 0.5,
                "left_child": {
                    "split_feature": 0,
                    "internal_value": 0.2,
                    "left_child": {"leaf_index": 0, "leaf_value": -1.0},
                    "right_child": {"leaf_index": 1, "leaf_value": 3.0},
                },
                "right_child": {"leaf_index": 2, "leaf_value": 2.0},
            },
        },
        {"num_leaves": 1, "tree_structure": {"leaf_value": 0.7}},  # no split: nothing to credit
    ]
}


def test_path_contributions_credit_each_split_with_the_change_it_makes():
    table = path_contributions(DUMP, 3)
    assert table.shape == (2, 3, 3)
    # leaf 0: root 0.5 -> 0.2 on feature 1 (-0.3), then 0.2 -> -1.0 on feature 0 (-1.2)
    np.testing.assert_allclose(table[0, 0], [-1.2, -0.3, 0.0])
    np.testing.assert_allclose(table[0, 1], [2.8, -0.3, 0.0])
    np.testing.assert_allclose(table[0, 2], [0.0, 1.5, 0.0])
    np.testing.assert_array_equal(table[1], 0.0)
    # each leaf's row sums to its value minus the root's
    np.testing.assert_allclose(table[0].sum(axis=1), np.array([-1.0, 3.0, 2.0]) - 0.5)


@pytest.fixture(scope="module")
def ranker():
    rng = np.random.default_rng(0)
    groups = np.full(300, 20)
    x = rng.normal(size=(groups.sum(), 4)).astype(np.float32)
    y = (x[:, 1] + 0.5 * x[:, 2] + rng.normal(scale=0.5, size=len(x)) > 1.5).astype(np.float32)
    return train_rankers(x, y, groups, ["base", "a", "b", "noise"], "base", members=2), x


def test_contributions_add_up_to_the_score_and_group_by_columns(ranker):
    r, x = ranker
    assert len(r.boosters) == 2 and all(b.num_trees() > 1 for b in r.boosters)
    per_feature = r.contributions(x)
    assert per_feature.shape == (len(x), 4)
    # every row's contributions sum to its score less one constant (the trees' root values, the base's mean)
    gap = r.predict(x) - per_feature.sum(axis=1)
    np.testing.assert_allclose(gap, gap[0], atol=1e-4)
    # the features that decide the label get the credit: "a" most, "noise" least
    spread = np.abs(per_feature).mean(axis=0)
    assert spread[1] > spread[2] > spread[3]
    groups = np.array([[1, 0], [0, 1], [0, 1], [0, 0]], np.float64)  # base alone; a + b; noise in none
    grouped = r.contributions(x, groups=groups)
    np.testing.assert_allclose(grouped[:, 0], per_feature[:, 0], atol=1e-5)
    np.testing.assert_allclose(grouped[:, 1], per_feature[:, 1] + per_feature[:, 2], atol=1e-5)
    assert r.contributions(x[:0]).shape == (0, 4)
