"""The embedding models' NumPy scoring: pooling, user vectors and dot products by hand; explanations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.model.embedding_scoring import SavedEmbedding, dot_scores, pool_norm, pooled_rows, user_vectors


def test_pooling_by_hand():
    hist = sp.csr_matrix(np.array([[1, 0, 3], [0, 0, 0]], dtype=np.float32))  # weights do not count: binary
    factors = np.array([[1.0, 2.0], [10.0, 10.0], [3.0, -2.0]], dtype=np.float32)  # history factors
    own = np.array([[0.5, 0.5], [1.0, -1.0]], dtype=np.float32)
    # row 0 pools items 0 and 2: sum (4, 0); mean (2, 0); sqrt (4/sqrt2, 0); none (4, 0); plus own (0.5, 0.5)
    for pooling, div in (("mean", 2.0), ("sqrt", np.sqrt(2.0)), ("none", 1.0)):
        v = user_vectors(np.array([0, 1]), hist, own, factors, pooling)
        np.testing.assert_allclose(v[0], [0.5 + 4.0 / div, 0.5], rtol=1e-6)
        np.testing.assert_allclose(v[1], [1.0, -1.0])  # empty history pools to 0
    # unknown user (-1): no own embedding
    np.testing.assert_allclose(user_vectors(np.array([-1]), hist[:1], own, factors, "mean")[0], [2.0, 0.0])
    np.testing.assert_allclose(pool_norm(np.array([0, 1, 4]), "sqrt"), [1.0, 1.0, 2.0])
    np.testing.assert_allclose(pooled_rows(hist, "mean").toarray(), [[0.5, 0, 0.5], [0, 0, 0]])
    items = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(dot_scores(np.array([[2.0, 3.0]]), items, np.array([0.5, -1.0])), [[2.5, 2.0]])


@pytest.mark.parametrize("pools_history", [True, False])
def test_strongest_history_rows_matches_explain_row_by_row(pools_history):
    rng = np.random.default_rng(5)
    n_users, n_items, d = 30, 25, 4
    factors = rng.normal(size=(n_items, d)).astype(np.float32)
    history_factors = rng.normal(size=(n_items, d)).astype(np.float32) if pools_history else np.zeros_like(factors)
    model = SavedEmbedding(
        rng.normal(size=(n_users, d)).astype(np.float32),
        history_factors,
        factors,
        np.zeros(n_items, np.float32),
        "sqrt",
    )
    history = sp.random(n_users, n_items, density=0.2, random_state=6, format="csr", dtype=np.float32)
    history.data[:] = 1.0
    history.data[::7] = -1.0  # a negative entry is not a history item
    history.data[history.indptr[3] : history.indptr[4]] = 0  # a row without history
    history.eliminate_zeros()
    items = rng.integers(0, n_items, size=(n_users, 6))
    items[::4, 3:] = -1  # shorter lists, padded
    got = model.strongest_history_rows(history, items)
    for r in range(n_users):
        n = int((items[r] >= 0).sum())
        want = model.explain(r, history[r], items[r, :n]).strongest_history()
        assert got[r, :n].tolist() == want.tolist() and (got[r, n:] == -1).all()
    assert (got[3] == -1).all()
