"""Training the Keras model: dense and sparse batches make the same model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.model.embedding import EmbeddingRecommender

from .conftest import N_USERS, TINY_PARAMS


def test_dense_and_sparse_batches_train_the_same_model(planted, monkeypatch):
    """Small matrices are batched from a dense copy, large ones from the CSR: the same model either way."""
    from app.model import embedding_training

    order = sp.csr_matrix(planted)
    order.data = np.random.default_rng(0).random(order.nnz).astype(np.float32)
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 3, "future_share": 0.5}
    dense = EmbeddingRecommender(**params).fit(planted, recency=order)
    monkeypatch.setattr(embedding_training, "DENSE_ROWS_LIMIT", 0)
    sparse = EmbeddingRecommender(**params).fit(planted, recency=order)
    users = np.arange(N_USERS)
    np.testing.assert_allclose(dense.score(users, planted), sparse.score(users, planted), rtol=1e-5, atol=1e-6)
