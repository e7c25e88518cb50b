"""The weighted heuristic by hand, and its explanation: the three weighted parts of each score."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.heuristic import HeuristicRecommender
from tests.model.small import SMALL, row


def test_heuristic_hand_checked():
    # popularity counts 3, 3, 2 -> log1p / log1p(3) = 1, 1, ln3/ln4 = 0.79248
    # avg rating 5, unknown, 3 -> (r-1)/4 = 1, (global mean of known 0.75), 0.5
    # genres: item0 {a}, item1 {b}, item2 {a, b}; user history {1} -> likes b only -> match 0, 1, 0.5
    feats = ItemFeatures(
        genres=sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)),
        genre_names=["a", "b"],
        avg_rating=np.array([5.0, np.nan, 3.0], dtype=np.float32),
    )
    h = HeuristicRecommender(pool_size=3).fit(SMALL, feats)
    # item0 = .55*1 + .25*1 + .2*0 = 0.8; item1 = .55 + .25*.75 + .2 = 0.9375;
    # item2 = .55*0.79248 + .25*.5 + .2*.5 = 0.43587 + 0.125 + 0.1 = 0.66087
    assert h.score(np.array([0]), row(1))[0] == pytest.approx([0.8, 0.9375, 0.66087], abs=1e-5)
    # pool of 1: the most popular unseen item (item 0, count 3) keeps its score, the rest lose 1
    h1 = HeuristicRecommender(pool_size=1).fit(SMALL, feats)
    assert h1.score(np.array([0]), row(1))[0] == pytest.approx([0.8, -0.0625, -0.33913], abs=1e-5)
    # no features: rating part is 0.5 for all, no genre part
    plain = HeuristicRecommender(pool_size=3).fit(SMALL)
    assert plain.score(np.array([0]), row(1))[0] == pytest.approx(
        [0.675, 0.675, 0.55 * np.log(3) / np.log(4) + 0.125], abs=1e-5
    )


def test_heuristic_explains_its_three_parts():
    feats = ItemFeatures(
        genres=sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)),
        genre_names=["a", "b"],
        avg_rating=np.array([5.0, np.nan, 3.0], dtype=np.float32),
    )
    h = HeuristicRecommender(pool_size=3).fit(SMALL, feats)
    parts = h.explain(0, row(1), np.array([0, 1, 2])).features
    # genre match .2 * (0, 1, .5); popularity .55 * (1, 1, .79248); rating .25 * (1, .75, .5): they add up to the score
    assert parts["genre_match"] == pytest.approx([0.0, 0.2, 0.1])
    assert parts["popularity"] == pytest.approx([0.55, 0.55, 0.55 * np.log(3) / np.log(4)], abs=1e-6)
    assert parts["rating"] == pytest.approx([0.25, 0.1875, 0.125])
    total = parts["genre_match"] + parts["popularity"] + parts["rating"]
    assert total == pytest.approx(h.score(np.array([0]), row(1))[0], abs=1e-5)
