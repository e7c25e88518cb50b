"""Item-kNN: cosine neighbours and their sums, and explanations by the same cosines, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.itemknn import ItemKNNRecommender
from tests.model.small import SMALL, row


def test_itemknn_hand_checked():
    # item counts 3, 3, 2; co-occurrence (0,1) = 2, (0,2) = 2, (1,2) = 1
    # cos(0,1) = 2/sqrt(3*3) = 0.6667; cos(0,2) = 2/sqrt(3*2) = 0.8165; cos(1,2) = 1/sqrt(3*2) = 0.4082
    full = ItemKNNRecommender(neighbours=2).fit(SMALL)
    # history {1}: item 0 gets cos(1,0) = 0.6667, item 2 gets cos(1,2) = 0.4082
    assert full.score(np.array([0]), row(1))[0] == pytest.approx([2 / 3, 0.0, 1 / np.sqrt(6)], abs=1e-6)
    # history {0, 1}: item 2 = cos(0,2) + cos(1,2) = 0.8165 + 0.4082 = 1.2247
    assert full.score(np.array([0]), row(0, 1))[0][2] == pytest.approx(2 / np.sqrt(6) + 1 / np.sqrt(6), abs=1e-6)
    # one neighbour per item j: item 0 keeps item 2 (0.8165 > 0.6667), items 1 and 2 keep item 0
    one = ItemKNNRecommender(neighbours=1).fit(SMALL)
    assert one.score(np.array([0]), row(1))[0] == pytest.approx([0.0, 0.0, 0.0])  # item 1 is nobody's neighbour
    assert one.score(np.array([0]), row(0))[0] == pytest.approx([0.0, 2 / 3, 2 / np.sqrt(6)], abs=1e-6)
    assert one.score(np.array([0]), row(2))[0] == pytest.approx([2 / np.sqrt(6), 0.0, 0.0], abs=1e-6)


def test_itemknn_explains_by_the_cosines_it_sums():
    knn = ItemKNNRecommender(neighbours=2).fit(SMALL)
    why = knn.explain(0, row(0, 1), np.array([2]))
    # item 2 = cos(0,2) .8165 + cos(1,2) .4082: item 0 adds most
    assert why.history.tolist() == [0, 1]
    assert why.contributions[:, 0] == pytest.approx([2 / np.sqrt(6), 1 / np.sqrt(6)], abs=1e-6)
    assert why.strongest_history().tolist() == [0]
