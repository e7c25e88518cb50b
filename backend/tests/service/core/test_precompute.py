"""Precomputed best-first lists (app.service.core.precompute), against hand-worked rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.model.embedding_scoring import SavedEmbedding
from app.service.core import precompute

SCORES = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.3, 0.8, 0.3]], dtype=np.float32)


@pytest.fixture
def best() -> precompute.BestLists:
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0]]))  # row 0 has seen item 1
    return precompute.build(lambda rows: SCORES[rows], 2, 4, exclude)


def test_build_ranks_best_first_leaves_out_the_excluded_and_breaks_ties_by_index(best):
    assert best.items.tolist() == [[3, 2, 0, -1], [2, 0, 1, 3]]
    assert best.lengths.tolist() == [3, 4]
    assert best.scores.dtype == np.float32 and best.items.dtype == np.int32  # 8 bytes an entry
    assert best.scores[0, :3].tolist() == SCORES[0, [3, 2, 0]].tolist()  # as scored: a response rounds them


def test_first_k_reads_the_entries_that_pass_the_mask(best):
    pos, items, scores = precompute.first_k(best, 0, 2, None, eligible=3)
    assert items.tolist() == [3, 2] and scores.tolist() == pytest.approx([0.7, 0.5])
    mask = np.array([True, True, False, True])
    pos, items, _ = precompute.first_k(best, 0, 2, mask, eligible=2)  # items 0 and 3 pass (1 is seen)
    assert pos.tolist() == [0, 2] and items.tolist() == [3, 0]
    pos, items, _ = precompute.first_k(best, 0, 5, mask, eligible=2)  # k larger than what is eligible
    assert items.tolist() == [3, 0]


def test_first_k_gives_up_when_the_list_may_miss_eligible_items(monkeypatch):
    monkeypatch.setattr(precompute, "LENGTH", 2)
    short = precompute.build(lambda rows: SCORES[rows], 2, 4, sp.csr_matrix((2, 4)))
    assert short.items.tolist() == [[1, 3], [2, 0]]
    assert precompute.first_k(short, 1, 3, None, eligible=4) is None  # the third best is not in the list
    assert precompute.first_k(short, 1, 1, np.array([False, True, False, True]), eligible=2) is None
    assert precompute.first_k(short, 1, 2, None, eligible=4)[1].tolist() == [2, 0]


def test_strongest_history_names_the_history_item_the_engine_says_adds_most():
    best = precompute.BestLists(np.array([[2, 3], [0, 1]]), np.zeros((2, 2), np.float32), np.array([2, 2]))
    history = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    engine = SavedEmbedding(np.zeros((2, 2), np.float32), factors, factors, np.zeros(4, np.float32), "mean")
    # item 2 = (.9, .1): item 0 adds .9, item 1 .1; item 3 = (.2, .8): item 1 adds .8; user 1 has no history
    assert precompute.strongest_history(best, engine, history).tolist() == [[0, 1], [-1, -1]]


def test_strongest_history_by_rows_is_the_row_by_row_loop(monkeypatch):
    rng = np.random.default_rng(8)
    factors = rng.normal(size=(40, 3)).astype(np.float32)
    engine = SavedEmbedding(
        np.zeros((50, 3), np.float32), factors[::-1].copy(), factors, np.zeros(40, np.float32), "mean"
    )
    history = sp.random(50, 40, density=0.1, random_state=9, format="csr", dtype=np.float32)
    best = precompute.build(lambda rows: engine.score(np.arange(50)[rows], history[rows]), 50, 40, history)
    monkeypatch.setattr(precompute, "WHY_ROWS", 7)  # several blocks
    by_rows = precompute.strongest_history(best, engine, history)

    class OneRowAtATime:  # the same engine without ``strongest_history_rows``: the generic loop
        explain = engine.explain

    assert by_rows.tolist() == precompute.strongest_history(best, OneRowAtATime(), history).tolist()
    assert (by_rows[history.getnnz(axis=1) == 0] == -1).all() and (by_rows >= 0).any()
