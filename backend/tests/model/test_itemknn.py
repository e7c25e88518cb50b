"""Item-kNN: cosine neighbours and their sums, and explanations by the same cosines, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.model.itemknn import ItemKNNRecommender
from tests.model.small import SMALL, row


def test_itemknn_hand_checked():
    # item counts 3, 3, 2; co-occurrence (0,1) = 2, (0,2) = 2, (1,2) = 1
    # cos(0,1) = 2/sqrt(3*3) = 0.6667; cos(0,2) = 2/sqrt(3*2) = 0.8165; cos(1,2) = 1/sqrt(3*2) = 0.4082
    full = ItemKNNRecommender(neighbours=2).fit(SMALL)
    # history {1}: item 0 gets cos(1,0) = 0.6667, item 2 gets cos(1,2) = 0.4082
    assert full.score(np.array([0]), row(1))[0] == pytest.approx([2 / 3, 0.0, 1 / np.sqrt(6)], abs=1e-6)
    # history {0, 1}: item 2 = cos(0,2) + cos(1,2) = 0.8165 + 0.4082 = 1.2247
    assert full.score(np.array([0]), row(0, 1))[0][2] == pytest.approx(2 / np.sqrt(6) + 1 / np.sqrt(6), abs=1e-6)
    # one neighbour per item j: item 0 keeps item 2 (0.8165 > 0.6667), items 1 and 2 keep item 0
    one = ItemKNNRecommender(neighbours=1).fit(SMALL)
    assert one.score(np.array([0]), row(1))[0] == pytest.approx([0.0, 0.0, 0.0])  # item 1 is nobody's neighbour
    assert one.score(np.array([0]), row(0))[0] == pytest.approx([0.0, 2 / 3, 2 / np.sqrt(6)], abs=1e-6)
    assert one.score(np.array([0]), row(2))[0] == pytest.approx([2 / np.sqrt(6), 0.0, 0.0], abs=1e-6)


def test_itemknn_explains_by_the_cosines_it_sums():
    knn = ItemKNNRecommender(neighbours=2).fit(SMALL)
    why = knn.explain(0, row(0, 1), np.array([2]))
    # item 2 = cos(0,2) .8165 + cos(1,2) .4082: item 0 adds most
    assert why.history.tolist() == [0, 1]
    assert why.contributions[:, 0] == pytest.approx([2 / np.sqrt(6), 1 / np.sqrt(6)], abs=1e-6)
    assert why.strongest_history().tolist() == [0]


def test_strongest_history_of_many_rows_is_each_rows_own():
    knn = ItemKNNRecommender(neighbours=2).fit(SMALL)
    # history {0, 1}: item 2 -> item 0 (as above); item 0 -> item 1 (cos .6667, item 0 is the item itself
    # with no self-similarity); row 2 has no history; row 3 {1}: item 0 -> 1, and an unpadded -1 stays -1
    history = sp.vstack([row(0, 1), row(2), sp.csr_matrix((1, 3), dtype=np.float32), row(1)]).tocsr()
    items = np.array([[2, 0], [0, 1], [2, -1], [0, -1]])
    got = knn.strongest_history_rows(history, items)
    assert got.tolist() == [[0, 1], [2, 2], [-1, -1], [1, -1]]
    for r in (0, 1, 3):
        n = int((items[r] >= 0).sum())
        assert got[r, :n].tolist() == knn.explain(r, history[r], items[r, :n]).strongest_history().tolist()


def test_strongest_history_rows_matches_one_row_at_a_time_on_random_data():
    rng = np.random.default_rng(3)
    data = sp.random(60, 40, density=0.15, random_state=4, format="csr", dtype=np.float32)
    data.data[:] = 1.0
    knn = ItemKNNRecommender(neighbours=5).fit(data)
    items = rng.integers(0, 40, size=(60, 7))
    items[::5, 4:] = -1
    got = knn.strongest_history_rows(data, items)
    for r in range(60):
        n = int((items[r] >= 0).sum())
        assert got[r, :n].tolist() == knn.explain(r, data[r], items[r, :n]).strongest_history().tolist()
        assert (got[r, n:] == -1).all()


def test_cosine_neighbours_match_a_dense_computation_ties_to_the_lowest_index():
    """Each column keeps its ``neighbours`` most similar items (a heap per block when the catalogue is
    large enough), equal cosines going to the lower item index: checked against every cosine computed
    densely on random data, where small co-counts make many ties."""
    from app.model.itemknn import cosine_neighbours

    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((60, 100)) < 0.05).astype(np.float32))
    dense = x.toarray()
    norms = np.sqrt(dense.sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.nan_to_num((dense.T @ dense) / np.outer(norms, norms))
    np.fill_diagonal(cos, 0.0)
    k = 5
    for block in (8_000_000, 1_000):  # one block, and 10 columns a block
        w = cosine_neighbours(x, k, block_floats=block).toarray()
        for j in range(100):
            order = np.lexsort((np.arange(100), -cos[:, j]))[:k]  # best first, ties by item index
            expected = np.zeros(100)
            keep = order[cos[order, j] > 0]
            expected[keep] = cos[keep, j]
            np.testing.assert_allclose(w[:, j], expected, atol=1e-6, err_msg=f"column {j}")
