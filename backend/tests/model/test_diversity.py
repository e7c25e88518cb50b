"""MMR re-ranking and intra-list diversity against values worked out by hand on four items in 2-D.

Items (vectors, not normalised): 0 (2, 0), 1 (3, 3), 2 (0, 1), 3 (1, 0); cosines: 0-1 and 1-2 are
1/sqrt(2) = .7071, 0-2 and 2-3 are 0, 0-3 is 1, 1-3 is .7071. Relevance of candidates 0..3: 4, 3, 2,
3.5, so min-max scaled 1, .5, 0, .75.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.model import diversity
from app.model.diversity import intra_list_diversity, mmr

VECTORS = np.array([[2.0, 0.0], [3.0, 3.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
CANDIDATES = np.array([0, 1, 2, 3])
RELEVANCE = np.array([4.0, 3.0, 2.0, 3.5])
C = 1 / np.sqrt(2)


def test_no_diversity_is_the_top_k_by_relevance():
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 4, 0.0).tolist() == [0, 3, 1, 2]
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 2, 0.0).tolist() == [0, 3]
    # a list ranked best first comes back as its first k, equal relevance in input order
    assert mmr(np.array([3, 1, 0]), np.array([5.0, 5.0, 1.0]), VECTORS, 2, 0.0).tolist() == [3, 1]


def test_half_diversity_picks_worked_out_by_hand():
    # gain .5 * scaled relevance: 0 .5, 1 .25, 2 0, 3 .375; the first pick is 0 (nothing picked yet).
    # Then 1: .25 - .5 * .7071 = -.104, 2: 0 - .5 * 0 = 0, 3: .375 - .5 * 1 = -.125 -> 2.
    # Then (closest: 1 .7071, 3 max(1, 0) = 1) 1: -.104, 3: -.125 -> 1, and 3 last.
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 4, 0.5).tolist() == [0, 2, 1, 3]
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 2, 0.5).tolist() == [0, 2]
    # diversity .45 (gain .55 x): after 0 and 2, 1: .275 - .45 * .7071 = -.043 loses to 3: .4125 - .45 = -.0375
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 4, 0.45).tolist() == [0, 2, 3, 1]
    # diversity .2 (gain .8 x): second pick 1: .4 - .2 * .7071 = .259, 2: 0, 3: .6 - .2 = .4 -> 3
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 4, 0.2).tolist() == [0, 3, 1, 2]


def test_full_diversity_starts_from_the_most_relevant_and_breaks_ties_by_relevance():
    # the order of the input does not matter: 0 (most relevant) first, then 2 (cosine 0 to it), 1, 3
    shuffled = np.array([2, 3, 1, 0])
    assert mmr(shuffled, RELEVANCE[shuffled], VECTORS, 4, 1.0).tolist() == [0, 2, 1, 3]
    # 0 and 3 are both at cosine .7071 from 1, which comes first: the more relevant (3) wins
    assert mmr(np.array([1, 0, 3]), np.array([9.0, 1.0, 2.0]), VECTORS, 3, 1.0).tolist() == [1, 3, 0]


def test_equal_relevance_sizes_and_sparse_vectors():
    assert mmr(CANDIDATES, np.ones(4), VECTORS, 2, 0.5).tolist() == [0, 2]  # scaled relevance 1 for all
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 10, 0.5).tolist() == [0, 2, 1, 3]
    assert mmr(CANDIDATES, RELEVANCE, VECTORS, 0, 0.5).size == 0
    assert mmr(CANDIDATES, RELEVANCE, sp.csr_matrix(VECTORS), 4, 0.5).tolist() == [0, 2, 1, 3]


def test_mmr_refuses_bad_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        mmr(CANDIDATES, RELEVANCE, VECTORS, 2, 1.5)
    with pytest.raises(ValueError, match="finite"):
        mmr(CANDIDATES, np.array([1.0, -np.inf, 0.0, 0.0]), VECTORS, 2, 0.5)
    with pytest.raises(ValueError, match="aligned"):
        mmr(CANDIDATES, RELEVANCE[:3], VECTORS, 2, 0.5)


ZERO = np.vstack([VECTORS, [[0.0, 0.0]]])  # item 4: no vector (an item without genres)
LISTS = np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1], [0, 2, -1], [0, 4, -1], [1, 3, 0]])
# [0 1 2]: (1 - .7071 + 1 - 0 + 1 - .7071) / 3; [0 3]: 1 - 1; [2]: no pair; [0 2]: 1 - 0; [0 4]: 1 - 0;
# [1 3 0]: (1 - .7071 + 1 - .7071 + 1 - 1) / 3
EXPECTED = [(3 - 2 * C) / 3, 0.0, np.nan, 1.0, 1.0, (2 - 2 * C) / 3]


def test_intra_list_diversity_by_hand():
    got = intra_list_diversity(LISTS, ZERO)
    assert got.dtype == np.float64 and got.shape == (6,)
    np.testing.assert_allclose(got, EXPECTED, atol=1e-6)


def test_sparse_vectors_and_small_chunks_agree(monkeypatch):
    np.testing.assert_allclose(intra_list_diversity(LISTS, sp.csc_matrix(ZERO)), EXPECTED, atol=1e-6)
    monkeypatch.setattr(diversity, "CHUNK_VALUES", 3)  # a list or two per chunk
    np.testing.assert_allclose(intra_list_diversity(LISTS, sp.csr_matrix(ZERO)), EXPECTED, atol=1e-6)
    np.testing.assert_allclose(intra_list_diversity(LISTS, ZERO), EXPECTED, atol=1e-6)


def test_intra_list_diversity_is_the_mean_over_pairs():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 5))
    ranked = np.array([rng.choice(30, 8, replace=False) for _ in range(4)])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row, got in zip(ranked, intra_list_diversity(ranked, vectors), strict=True):
        pairs = [1 - unit[a] @ unit[b] for i, a in enumerate(row) for b in row[i + 1 :]]
        assert got == pytest.approx(np.mean(pairs))
    with pytest.raises(ValueError, match="2-D"):
        intra_list_diversity(np.array([0, 1]), vectors)


def test_lists_sharing_long_sparse_rows_take_one_product_with_the_same_result(monkeypatch):
    """Interaction columns (items x users): lists of popular items share rows, so their cosines come from
    one Gram matrix; summing per list gives the same values."""
    rng = np.random.default_rng(1)
    columns = sp.csr_matrix((rng.random((40, 300)) < np.linspace(0.6, 0.02, 40)[:, None]).astype(np.float32))
    ranked = np.array([rng.choice(8, 5, replace=False) for _ in range(30)])  # the 8 most popular items
    ranked[3, 2:] = -1
    calls = []
    real = diversity._shared_gram

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(diversity, "_shared_gram", spy)
    shared = intra_list_diversity(ranked, columns)
    assert calls[0] is not None  # the shared product answered
    monkeypatch.setattr(diversity, "GRAM_ITEMS", 0)
    per_list = intra_list_diversity(ranked, columns)
    assert calls[1] is None
    np.testing.assert_allclose(shared, per_list, atol=1e-9)
    dense = columns.toarray()
    unit = dense / np.linalg.norm(dense, axis=1, keepdims=True)
    row = ranked[3, :2]
    assert shared[3] == pytest.approx(1 - unit[row[0]] @ unit[row[1]])
