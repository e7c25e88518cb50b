"""``top_k_row``, the serving top-k, against lists worked out by hand and against the batched ``top_k``."""

from __future__ import annotations

import numpy as np
import pytest

from app.model.base import top_k, top_k_row


def test_best_first_and_masked_items_dropped():
    scores = np.array([0.2, -np.inf, 0.9, 0.5, -np.inf, 0.7], dtype=np.float32)
    idx, top = top_k_row(scores, 3)
    assert idx.tolist() == [2, 5, 3]
    assert top.tolist() == pytest.approx([0.9, 0.7, 0.5])
    idx, top = top_k_row(scores, 6)  # only 4 are eligible
    assert idx.tolist() == [2, 5, 3, 0] and idx.dtype == np.int64


def test_k_larger_than_the_catalogue_and_k_zero():
    scores = np.array([1.0, 3.0, 2.0], dtype=np.float32)
    assert top_k_row(scores, 10)[0].tolist() == [1, 2, 0]
    assert top_k_row(scores, 0)[0].size == 0
    assert top_k_row(np.full(4, -np.inf, dtype=np.float32), 2)[0].size == 0


def test_agrees_with_the_batched_top_k():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=500).astype(np.float32)
    scores[rng.choice(500, 50, replace=False)] = -np.inf
    for k in (1, 10, 450, 500):
        batched, _ = top_k(scores[None, :], k)
        row = batched[0][batched[0] >= 0]
        assert top_k_row(scores, k)[0].tolist() == row.tolist()


def test_equal_scores_come_in_item_order_in_both_versions():
    """Ties are broken by item index, so the precomputed lists and the per-request path agree."""
    scores = np.array([0.5, 0.9, 0.7, 0.9, 0.7, 0.9], dtype=np.float32)
    idx, top = top_k_row(scores, 5)
    assert idx.tolist() == [1, 3, 5, 2, 4]
    assert top.tolist() == pytest.approx([0.9, 0.9, 0.9, 0.7, 0.7])
    assert top_k(scores[None, :], 5)[0][0].tolist() == [1, 3, 5, 2, 4]
    # a tie across the k-th place goes to the lowest item indices (top_k_row; requests and precomputed lists)
    tied = np.full(300, 0.5, dtype=np.float32)
    tied[[7, 250]] = 0.9
    tied[-1] = -np.inf
    assert top_k_row(tied, 4)[0].tolist() == [7, 250, 0, 1]
    assert top_k_row(tied, 300)[0].tolist() == [7, 250, *range(7), *range(8, 250), *range(251, 299)]
