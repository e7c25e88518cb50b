"""Negative sampling: never a positive, shape, reproducibility, popularity preference, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.sampling import NegativeSampler


def random_matrix(n_users=200, n_items=50, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("strategy", ["uniform", "popularity"])
def test_never_a_positive_and_shape(strategy):
    m = random_matrix()
    sampler = NegativeSampler(m, num_negatives=4, strategy=strategy, seed=1)
    users = np.repeat(np.arange(m.shape[0]), 5)  # 5 positives per user in a batch
    neg = sampler.sample(users)
    assert neg.shape == (len(users), 4) and neg.dtype == np.int32
    assert neg.min() >= 0 and neg.max() < m.shape[1]
    dense = m.toarray() > 0
    assert not dense[users[:, None], neg].any()


def test_dense_user_still_gets_its_only_negatives():
    dense = np.zeros((3, 10), dtype=np.float32)
    dense[0, :9] = 1  # only item 9 is free
    dense[1, [0, 1, 2]] = 1
    sampler = NegativeSampler(sp.csr_matrix(dense), num_negatives=6, strategy="popularity", seed=0)
    neg = sampler.sample(np.array([0, 0, 1, 2]))
    assert (neg[:2] == 9).all()  # item 9 has no positives, so popularity weight 0: filled exactly
    assert not np.isin(neg[2], [0, 1, 2]).any()


def test_user_with_every_item_is_an_error():
    sampler = NegativeSampler(sp.csr_matrix(np.ones((2, 4), dtype=np.float32)), num_negatives=1)
    with pytest.raises(ValueError, match="positive for every item"):
        sampler.sample(np.array([1]))


def test_reproducible_from_seed():
    m = random_matrix()
    users = np.arange(m.shape[0])
    a = NegativeSampler(m, 3, seed=7)
    b = NegativeSampler(m, 3, seed=7)
    first = a.sample(users)
    np.testing.assert_array_equal(first, b.sample(users))
    np.testing.assert_array_equal(a.sample(users), b.sample(users))  # the sequence of batches too
    assert not np.array_equal(first, a.sample(users))
    assert not np.array_equal(first, NegativeSampler(m, 3, seed=8).sample(users))


def test_popularity_prefers_popular_items_uniform_does_not():
    n_users, n_items = 400, 40
    rng = np.random.default_rng(0)
    # item j is a positive with probability falling with j: item 0 is most popular
    p = np.linspace(0.5, 0.01, n_items)
    dense = rng.random((n_users, n_items)) < p
    m = sp.csr_matrix(dense.astype(np.float32))
    users = np.arange(n_users).repeat(20)
    counts = {}
    for strategy in ("uniform", "popularity"):
        neg = NegativeSampler(m, 5, strategy=strategy, seed=3).sample(users)
        counts[strategy] = np.bincount(neg.ravel(), minlength=n_items)
    head, tail = slice(0, 10), slice(30, 40)
    assert counts["popularity"][head].sum() > 2 * counts["popularity"][tail].sum()
    # uniform: the head is drawn less than the tail (its items are more often positives, so rejected)
    assert counts["uniform"][head].sum() < counts["uniform"][tail].sum()
    # rejection sampling draws from count^0.75 restricted to each user's non-positives
    pop = dense.sum(axis=0) ** 0.75
    per_user = (~dense) * pop
    expected = (per_user / per_user.sum(axis=1, keepdims=True)).sum(axis=0) / n_users
    observed = counts["popularity"] / counts["popularity"].sum()
    assert np.abs(observed - expected).max() < 0.004


def test_ratio_for_a_dataset_epoch():
    m = random_matrix(50, 30, 0.2)
    coo = m.tocoo()
    neg = NegativeSampler(m, num_negatives=4, seed=0).sample(coo.row)
    assert neg.size == 4 * m.nnz


def test_bad_arguments():
    m = random_matrix(5, 5)
    with pytest.raises(ValueError, match="strategy"):
        NegativeSampler(m, 2, strategy="zipf")
    with pytest.raises(ValueError, match="num_negatives"):
        NegativeSampler(m, 0)
    with pytest.raises(IndexError):
        NegativeSampler(m, 1).sample(np.array([5]))
