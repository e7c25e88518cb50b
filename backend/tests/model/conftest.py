"""Tiny planted data for the model tests: two user groups, each liking its own half of the items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

N_USERS = 40
N_ITEMS = 20
PER_USER = 6


def planted_matrix(seed: int = 0) -> sp.csr_matrix:
    """Users 0-19 like items 0-9 only, users 20-39 like items 10-19 only (6 random items each)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    half = N_ITEMS // 2
    for u in range(N_USERS):
        group = 0 if u < N_USERS // 2 else 1
        items = rng.choice(half, size=PER_USER, replace=False) + group * half
        rows += [u] * PER_USER
        cols += items.tolist()
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, N_ITEMS))
    m.sort_indices()
    return m


def group_of_item(i: np.ndarray) -> np.ndarray:
    return (np.asarray(i) >= N_ITEMS // 2).astype(int)


def group_of_user(u: np.ndarray) -> np.ndarray:
    return (np.asarray(u) >= N_USERS // 2).astype(int)


TINY_PARAMS = dict(
    embedding_dim=8, epochs=30, batch_size=64, learning_rate=0.05, num_negatives=4, l2=0.0, ensemble=1, seed=7
)


@pytest.fixture(scope="package")
def planted() -> sp.csr_matrix:
    return planted_matrix()


@pytest.fixture(scope="package")
def trained(planted):
    """One small model shared by the tests of this folder (a Keras fit costs a few seconds)."""
    from app.model.embedding import EmbeddingRecommender

    return EmbeddingRecommender(**TINY_PARAMS).fit(planted)
