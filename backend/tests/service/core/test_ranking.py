"""Top-k for one request: ranking with a popular fill, reading a precomputed list, picking a diversified
list from a pool, response records."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.service.core import precompute
from app.service.core.ranking import Result, diversify, finish, pool_size, rank, records, top

SCORES = np.array([0.1, -np.inf, 0.7, -np.inf, 0.4], dtype=np.float32)
POPULAR = np.array([5.0, 4.0, 3.0, 2.0, 1.0], dtype=np.float32)


def test_an_engine_that_leaves_items_out_is_filled_from_popular_items():
    r = rank(SCORES, 4, None, np.array([4]), POPULAR, 5)
    assert r.idx.tolist() == [2, 0, 1, 3] and r.n_own == 2 and r.total == 4  # own: 2, 0; then popular 1, 3
    assert rank(SCORES, 4, None, np.array([4]), None, 5).idx.tolist() == [2, 0]
    mask = np.array([True, True, False, True, True])
    assert rank(SCORES, 2, mask, np.zeros(0, np.intp), POPULAR, 5).idx.tolist() == [4, 0]


def test_a_precomputed_row_answers_when_it_holds_the_k_best_else_the_scores_are_ranked():
    best = precompute.build(lambda rows: np.stack([SCORES])[rows], 1, 5, sp.csr_matrix((1, 5)))
    called = []

    def scores():
        called.append(1)
        return SCORES

    r = top((best, 0), scores, 2, None, np.zeros(0, np.intp), POPULAR, 5)
    assert r.positions == slice(0, 2) and r.idx.tolist() == [2, 4] and not called
    r = top((best, 0), scores, 2, np.array([True, True, False, True, False]), np.zeros(0, np.intp), POPULAR, 5)
    assert r.idx.tolist() == [0, 1] and r.positions is None and called  # only item 0 of the list passes: ranked


def test_a_diversified_list_reranks_the_engines_own_items_and_keeps_the_popular_fill_after_them():
    scores = np.array([0.9, 0.8, 0.7, -np.inf, -np.inf], dtype=np.float32)  # the engine leaves out 3 and 4
    # item vectors: 0 and 3 point along x, 1 almost (cosine .995 to 0), 2 and 4 along y
    vectors = np.array([[1, 0], [1, 0.1], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    pool = rank(scores, 5, None, np.zeros(0, np.intp), POPULAR, 5)
    assert pool.idx.tolist() == [0, 1, 2, 3, 4] and pool.n_own == 3
    two = diversify(pool, 2, vectors, 1.0)  # 0 first; then 2 (cosine 0 to it) before 1 (.995)
    assert two.idx.tolist() == [0, 2] and two.scores.tolist() == pytest.approx([0.9, 0.7])
    assert two.n_own == 2 and two.total == 5 and two.positions is None
    four = diversify(pool, 4, vectors, 1.0)  # every own item, then the first popular fill
    assert four.idx.tolist() == [0, 2, 1, 3] and four.n_own == 3
    assert diversify(pool, 2, vectors, 0.0).idx.tolist() == [0, 1]  # no diversity: the pool's first k
    assert (pool_size(3), pool_size(10), pool_size(40)) == (50, 50, 200)


def test_records_round_scores_and_number_ranks():
    base = [(f"i{j}", f"Title {j}", ["G"], 2000 + j) for j in range(3)]
    got = records(base, np.array([2, 0]), np.array([0.12345678, 0.5], np.float32), [["a"], ["b"]])
    assert got[0] == {
        "item_id": "i2",
        "title": "Title 2",
        "genres": ["G"],
        "year": 2002,
        "score": pytest.approx(0.123457),
        "rank": 1,
        "reasons": ["a"],
    }
    assert got[1]["rank"] == 2 and got[1]["score"] == 0.5
    short = finish(Result("nn", "auto", False, "personalised", got, 2), 3)
    assert short.notes == ["only 2 item(s) are left after filters and exclusions; returning 2 of the 3 requested"]
