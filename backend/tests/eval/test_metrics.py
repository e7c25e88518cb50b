"""Every metric against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from app.eval import metrics as M

# Two users, five items. -1 is padding (a list shorter than the catalogue).
RANKED = np.array([[3, 1, 4, 0, 2], [2, 0, 1, -1, -1]])
# user 0 likes items 1 and 2; user 1 likes item 4.
TRUTH = sp.csr_matrix(np.array([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))


def test_hits_mark_relevant_positions_and_never_padding():
    h = M.hits(RANKED, TRUTH)
    # user 0: ranks 2 (item 1) and 5 (item 2); user 1: no hit; -1 never counts
    assert h.tolist() == [[False, True, False, False, True], [False, False, False, False, False]]


def test_precision_at_k():
    # user 0: top-1 {3} -> 0/1; top-2 {3,1} -> 1/2; top-5 -> 2/5.  user 1: 0 everywhere.
    assert M.precision_at_k(RANKED, TRUTH, 1).tolist() == [0.0, 0.0]
    assert M.precision_at_k(RANKED, TRUTH, 2).tolist() == [0.5, 0.0]
    assert M.precision_at_k(RANKED, TRUTH, 5).tolist() == pytest.approx([0.4, 0.0])


def test_recall_at_k():
    # user 0 has 2 relevant: top-2 finds 1 -> 1/2, top-5 finds 2 -> 2/2. user 1 finds none of 1 -> 0.
    assert M.recall_at_k(RANKED, TRUTH, 2).tolist() == [0.5, 0.0]
    assert M.recall_at_k(RANKED, TRUTH, 5).tolist() == [1.0, 0.0]


def test_recall_is_zero_for_a_user_without_relevant_items():
    truth = sp.csr_matrix((2, 5), dtype=np.float32)
    assert M.recall_at_k(RANKED, truth, 5).tolist() == [0.0, 0.0]
    assert M.ndcg_at_k(RANKED, truth, 5).tolist() == [0.0, 0.0]


def test_hitrate_at_k():
    # user 0: first hit at rank 2 -> HR@1 = 0, HR@2 = 1.
    assert M.hitrate_at_k(RANKED, TRUTH, 1).tolist() == [0.0, 0.0]
    assert M.hitrate_at_k(RANKED, TRUTH, 2).tolist() == [1.0, 0.0]


def test_ndcg_at_k():
    # user 0, k=2: DCG = 1/log2(2+1) = 0.63093; ideal = 2 hits: 1/log2(2) + 1/log2(3) = 1.63093 -> 0.38685
    assert M.ndcg_at_k(RANKED, TRUTH, 2)[0] == pytest.approx(0.6309298 / 1.6309298, abs=1e-6)
    assert M.ndcg_at_k(RANKED, TRUTH, 2)[0] == pytest.approx(0.38685, abs=1e-5)
    # k=5: DCG = 1/log2(3) + 1/log2(6) = 0.63093 + 0.38685 = 1.01778; ideal still 1.63093 -> 0.62405
    assert M.ndcg_at_k(RANKED, TRUTH, 5)[0] == pytest.approx(1.0177825 / 1.6309298, abs=1e-6)
    assert M.ndcg_at_k(RANKED, TRUTH, 5)[1] == 0.0


def test_ndcg_ideal_uses_min_of_truth_and_k():
    # 3 relevant items, k = 2, both top-2 are relevant: DCG = ideal over min(3, 2) = 2 positions -> 1.0
    ranked = np.array([[0, 1, 3, 2]])
    truth = sp.csr_matrix(np.array([[1, 1, 1, 0]], dtype=np.float32))
    assert M.ndcg_at_k(ranked, truth, 2)[0] == pytest.approx(1.0)
    # k = 4: DCG = 1 + 1/log2(3) + 1/log2(5) (item 2 at rank 4) = 1 + 0.63093 + 0.43068 = 2.06161,
    # ideal = 1 + 0.63093 + 1/log2(4)=0.5 -> 2.13093; NDCG = 0.96747
    expected = (1 + 1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert M.ndcg_at_k(ranked, truth, 4)[0] == pytest.approx(expected)
    assert expected == pytest.approx(0.96747, abs=1e-5)


def test_reciprocal_rank_over_full_ranking():
    # user 0: first relevant at rank 2 -> 1/2; user 1: never ranked -> 0. MRR = 0.25
    rr = M.reciprocal_rank(RANKED, TRUTH)
    assert rr.tolist() == [0.5, 0.0]
    assert rr.mean() == 0.25


def test_coverage_of_top_k_lists():
    # top-2 lists: {3, 1} and {2, 0} -> 4 of 5 items; top-5: all 5 (padding ignored)
    assert M.coverage(RANKED, 5, k=2) == pytest.approx(0.8)
    assert M.coverage(RANKED, 5, k=5) == 1.0
    # top-1 lists {3}, {2} -> 2 / 5
    assert M.coverage(RANKED, 5, k=1) == pytest.approx(0.4)
    assert M.items_in_top(RANKED, 5, k=1).tolist() == [False, False, True, True, False]


def test_per_user_metrics_names():
    out = M.per_user_metrics(RANKED, TRUTH, ks=(2, 5))
    assert set(out) == {f"{m}@{k}" for m in ("precision", "recall", "ndcg", "hitrate") for k in (2, 5)} | {"mrr"}
    assert out["recall@5"].tolist() == [1.0, 0.0]


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])  # mean 0.5
    lo, hi = M.bootstrap_ci(values, n_boot=500, seed=7)
    assert (lo, hi) == M.bootstrap_ci(values, n_boot=500, seed=7)
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    # sd of the mean = sqrt(0.25 / 8) = 0.177; a 95% interval is about +/- 1.96 * 0.177 = 0.35 wide each side
    assert 0.2 < hi - 0.5 < 0.5 and 0.2 < 0.5 - lo < 0.5
    # a constant has a zero-width interval
    assert M.bootstrap_ci(np.full(10, 0.3), seed=1) == pytest.approx((0.3, 0.3))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="rows"):
        M.hits(RANKED, sp.csr_matrix((3, 5)))
