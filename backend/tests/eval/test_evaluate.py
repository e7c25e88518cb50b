"""evaluate() with a recommender whose scores are fixed by hand."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from app.eval.evaluate import evaluate


class FixedScores:
    """Returns preset scores for fitted users (a test double that still follows the contract)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, scores: np.ndarray):
        self.scores = np.asarray(scores, dtype=np.float32)

    def fit(self, matrix, features=None):
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self.scores[users]

    def params(self) -> dict[str, Any]:
        return {}


def test_evaluate_hand_computed():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32))  # u0 saw 0, u1 saw 3
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))  # right answers: 2 and 1
    # u0 scores 9 1 5 3 -> item 0 excluded -> ranking 2, 3, 1: hit at rank 1
    # u1 scores 4 1 2 8 -> item 3 excluded -> ranking 0, 2, 1: hit at rank 3
    rec = FixedScores([[9, 1, 5, 3], [4, 1, 2, 8]])
    out = evaluate(rec, train, test, np.array([0, 1]), ks=(1, 5), batch_size=1, n_boot=200)
    m = out["metrics"]
    assert out["n_users"] == 2
    assert m["ndcg@1"] == 0.5  # (1 + 0) / 2
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(4)) / 2)  # (1 + 0.5) / 2 = 0.75
    assert m["recall@5"] == 1.0 and m["hitrate@1"] == 0.5
    assert m["precision@5"] == pytest.approx(0.2)  # one hit in 5 slots for each user
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)  # 0.6667
    assert m["coverage@100"] == 1.0  # lists {2,3,1} and {0,2,1} cover all 4 items
    lo, hi = out["ci"]["ndcg@5"]  # 10 is not among ks, so the largest k gets the interval
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0


def test_evaluate_checks_shapes():
    rec = FixedScores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        evaluate(rec, sp.csr_matrix((2, 4)), sp.csr_matrix((2, 4)), np.array([0]))
    with pytest.raises(ValueError, match="differ"):
        evaluate(rec, sp.csr_matrix((2, 3)), sp.csr_matrix((2, 4)), np.array([0]))
