"""The contract's shared rules: ``top_k_row`` (the serving top-k, with filters and exclusions) against lists worked
out by hand and the batched ``top_k``; explanations; row and unit helpers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from app.model.base import Explanation, csr_row, history_items, top_k, top_k_row, two_at_a_time, unit_rows


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
    for k in (1, 10, 60, 450, 500):  # heap (k <= 500 / HEAP_RATIO) and argpartition
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
    assert top_k(np.stack([tied, tied[::-1]]), 4)[0].tolist() == [[7, 250, 0, 1], [49, 292, 1, 2]]  # the heap's path
    assert top_k_row(tied, 300)[0].tolist() == [7, 250, *range(7), *range(8, 250), *range(251, 299)]


def test_the_heaps_top_k_matches_a_full_sort_on_many_ties():
    """The heap's path on rows of few distinct scores (ties at every place, across the k-th too), some
    scores -inf and some rows with fewer than k left: the same lists as a full sort by score, then index."""
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 6, size=(40, 800)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0, 10:] = -np.inf  # 10 items left for a top 20
    idx, top = top_k(scores, 20)
    for r in range(40):
        order = np.lexsort((np.arange(800), -scores[r]))[:20]
        order = np.where(np.isneginf(scores[r, order]), -1, order)
        assert idx[r].tolist() == order.tolist(), f"row {r}"
    assert (idx[0, 10:] == -1).all() and np.isneginf(top[0, 10:]).all()


def test_filters_and_exclusions_cut_before_the_top_k():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    candidates = np.array([True, False, True, True, True])
    idx, top = top_k_row(scores, 2, candidates, np.array([0]))
    assert idx.tolist() == [2, 3] and top.tolist() == pytest.approx([0.7, 0.6])  # 1 filtered out, 0 excluded
    assert scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5])  # the caller's scores are left as they were
    assert top_k_row(scores, 5, None, np.array([4, 1]))[0].tolist() == [0, 2, 3]


def test_an_explanation_names_the_history_item_that_adds_most():
    why = Explanation(np.array([7, 8]), np.array([3, 5]), np.array([[0.2, 0.9], [0.4, 0.1]]))
    assert why.strongest_history().tolist() == [5, 3]
    assert Explanation(np.array([7, 8])).strongest_history().tolist() == [-1, -1]


def test_rows_units_and_history_items():
    m = sp.csr_matrix(np.array([[0, 2, 0, 1], [3, 0, 0, 0]], dtype=np.float32))
    assert csr_row(m, 0).toarray().tolist() == [[0, 2, 0, 1]] and csr_row(m, 1).shape == (1, 4)
    assert history_items(csr_row(m, 0)).tolist() == [1, 3]
    u = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(u, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert u.dtype == np.float32


def test_two_at_a_time_keeps_the_order_and_runs_one_block_in_the_caller():
    def block(start: int) -> tuple[int, str]:
        return start * start, threading.current_thread().name

    several = list(two_at_a_time(block, range(0, 50, 5)))
    assert [r for r, _ in several] == [s * s for s in range(0, 50, 5)]
    assert {name for _, name in several} <= {f"blocks_{k}" for k in range(2)}  # two worker threads
    assert list(two_at_a_time(block, [3])) == [(9, threading.current_thread().name)]
    assert list(two_at_a_time(block, [])) == []
