"""Implicit ALS behind the contract: users re-solved from their rows, explanations by factor cosines."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from app.model.als import FEW_ROWS, ALSRecommender
from tests.model.small import SMALL, row


@pytest.fixture(scope="module")
def als() -> ALSRecommender:
    return ALSRecommender(factors=2, iterations=10, regularization=0.1).fit(SMALL)


def test_a_user_is_re_solved_from_any_history_row(als):
    # the fitted user 0 and a stranger with the same history get the same factors and scores
    np.testing.assert_allclose(als.score(np.array([0]), SMALL[:1]), als.score(np.array([-1]), row(0, 1)), rtol=1e-5)


def test_a_few_rows_are_solved_in_numpy_as_implicit_solves_them(als):
    """The NumPy solve for a request's rows gives implicit's own ``recalculate_user`` factors."""
    rows = SMALL.tocsr()
    with threadpool_limits(1, "blas"):
        ref = np.asarray(als.model_.recalculate_user(np.arange(rows.shape[0]), rows), dtype=np.float32)
    np.testing.assert_allclose(als.user_factors(rows), ref, rtol=1e-4, atol=1e-5)
    assert rows.shape[0] <= FEW_ROWS  # the rows above took the NumPy path
    assert not als.user_factors(row()).any()  # an empty history: the zero vector


def test_explanations_are_the_cosines_of_the_item_factors(als):
    f = np.asarray(als.model_.item_factors, dtype=np.float64)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    why = als.explain(0, row(0, 1), np.array([2]))
    assert why.history.tolist() == [0, 1]
    assert why.contributions[:, 0] == pytest.approx([f[0] @ f[2], f[1] @ f[2]], abs=1e-5)
    assert why.strongest_history()[0] == (0 if f[0] @ f[2] >= f[1] @ f[2] else 1)
