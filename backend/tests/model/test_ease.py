"""EASE: the closed form by hand, the size limit, and explanations by the learned weights."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.ease import EASERecommender
from tests.model.small import SMALL, row


def test_ease_hand_checked():
    # G = X'X = [[3,2,2],[2,3,1],[2,1,2]]; lambda = 1 -> [[4,2,2],[2,4,1],[2,1,3]], det = 24
    # P = inverse = (1/24) [[11,-4,-6],[-4,8,0],[-6,0,12]]; B_ij = -P_ij / P_jj, zero diagonal:
    # B = [[0, 4/8, 6/12], [4/11, 0, 0], [6/11, 0, 0]] = [[0, .5, .5], [.3636, 0, 0], [.5455, 0, 0]]
    ease = EASERecommender(l2=1.0).fit(SMALL)
    expected = np.array([[0, 0.5, 0.5], [4 / 11, 0, 0], [6 / 11, 0, 0]])
    assert ease.weights_ == pytest.approx(expected, abs=1e-6)
    assert ease.score(np.array([-1]), row(0))[0] == pytest.approx([0, 0.5, 0.5], abs=1e-6)
    assert ease.score(np.array([-1]), row(1, 2))[0] == pytest.approx([10 / 11, 0, 0], abs=1e-6)


def test_ease_explains_by_its_weights_and_refuses_a_catalogue_above_its_limit(monkeypatch):
    ease = EASERecommender(l2=1.0).fit(SMALL)
    why = ease.explain(-1, row(1, 2), np.array([0]))
    assert why.contributions[:, 0] == pytest.approx([4 / 11, 6 / 11], abs=1e-6)  # B[1,0], B[2,0]
    assert why.strongest_history().tolist() == [2]
    monkeypatch.setattr(EASERecommender, "max_items", 2)
    with pytest.raises(ValueError, match="at most 2 items"):
        EASERecommender(l2=1.0).fit(SMALL)
