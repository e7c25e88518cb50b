"""Training the Keras model: dense and sparse batches make the same model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.model.embedding import EmbeddingRecommender

from .conftest import N_USERS, TINY_PARAMS, group_of_item, group_of_user


def test_dense_and_sparse_batches_both_learn_the_planted_groups(planted, monkeypatch):
    """Small matrices are batched from a dense copy (per-cell draws), large ones per positive from the
    CSR (``sparse_user_batch``): different draws, and either model puts the user's own group first."""
    from app.model import embedding_training

    order = sp.csr_matrix(planted)
    order.data = np.random.default_rng(0).random(order.nnz).astype(np.float32)
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 30, "future_share": 0.5}
    dense = EmbeddingRecommender(**params).fit(planted, recency=order)
    monkeypatch.setattr(embedding_training, "DENSE_ROWS_LIMIT", 0)
    sparse = EmbeddingRecommender(**params).fit(planted, recency=order)
    users = np.arange(N_USERS)
    for model in (dense, sparse):
        scores = model.score(users, planted)
        scores[planted.toarray() > 0] = -np.inf  # unseen items only
        best = scores.argmax(axis=1)
        assert (group_of_item(best) == group_of_user(users)).mean() >= 0.9
    assert not np.allclose(dense.score(users, planted), sparse.score(users, planted))


def test_a_sparse_batch_by_hand() -> None:
    """Dropout splits each user's positives into inputs (pooled) and targets; a future-share user keeps
    the positives before the cut (places 0.25-0.75 < cut in [0.8, 1)) and targets the newest."""
    from app.model.embedding_training import sparse_user_batch

    x = sp.csr_matrix(np.array([[1, 1, 0, 1, 1], [0, 1, 1, 0, 0]], np.float32))
    place = sp.csr_matrix(np.array([[0.25, 0.5, 0, 0.75, 1.0], [0, 0.5, 1.0, 0, 0]], np.float32))
    rng = np.random.default_rng(0)
    inputs, targets = sparse_user_batch(x, None, np.array([0, 1]), rng, 0.5, 0.0, 0.2, "mean")
    assert ((inputs > 0) + targets == x.toarray()).all()  # each positive is an input or a target, never both
    for row in range(2):
        kept = inputs[row] > 0
        if kept.any():
            np.testing.assert_allclose(inputs[row][kept], 1.0 / kept.sum())  # mean pooling
    inputs, targets = sparse_user_batch(x, place, np.array([0]), rng, 0.5, 1.0, 0.2, "mean")
    np.testing.assert_allclose(inputs[0], [1 / 3, 1 / 3, 0, 1 / 3, 0])
    np.testing.assert_array_equal(targets[0], [0, 0, 0, 0, 1])
    inputs, targets = sparse_user_batch(x, None, np.array([1, 0]), rng, 1e-9, 0.0, 0.2, "none")
    np.testing.assert_array_equal(inputs, x.toarray()[[1, 0]])  # nothing dropped, no pooling
    assert not targets.any()
