"""EASE: the closed form by hand, the size limit, and explanations by the learned weights."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.model.ease import FLOAT32_CONDITION, EASERecommender, ease_weights, mirror_triangle
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


@pytest.mark.parametrize("l2", [0.05, 50.0])
def test_ease_weights_match_the_general_inverse_in_either_precision(l2):
    # l2 = 50 keeps the condition bound under FLOAT32_CONDITION (float32), l2 = 0.05 does not (float64)
    rng = np.random.default_rng(0)
    x = (rng.random((300, 40)) < 0.2).astype(np.float64)
    gram = x.T @ x
    assert ((gram.sum(axis=1).max() + l2) / l2 <= FLOAT32_CONDITION) == (l2 == 50.0)
    p = np.linalg.inv(gram + l2 * np.eye(40))
    expected = p / -np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    got = ease_weights(sp.csr_matrix(gram), l2)
    assert got.dtype == np.float32 and got.flags.c_contiguous  # scoring multiplies it as it is
    assert got == pytest.approx(expected, abs=1e-6 * np.abs(expected).max())


def test_mirror_triangle_copies_either_triangle_across_blocks():
    a = np.array([[1.0, 2.0, 3.0], [-9.0, 4.0, 5.0], [-9.0, -9.0, 6.0]])
    mirror_triangle(a, upper=True, block=2)  # one block on the diagonal, one below it, one smaller at the end
    assert a.tolist() == [[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]]
    b = np.array([[1.0, -9.0, -9.0], [2.0, 4.0, -9.0], [3.0, 5.0, 6.0]])
    mirror_triangle(b, upper=False, block=2)
    assert b.tolist() == a.tolist()
