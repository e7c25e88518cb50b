"""evaluate() with a recommender whose scores are fixed by hand, and leak-free stage features."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.features import average_ratings, genre_matrix
from app.data.types import EventLog
from app.eval.data import EvalData, stage_features
from app.eval.evaluate import evaluate
from app.eval.splits import leave_last_out, temporal_split

from .conftest import make_dataset


class FixedScores:
    """Returns preset scores for fitted users (a test double that still follows the contract)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, scores: np.ndarray):
        self.scores = np.asarray(scores, dtype=np.float32)

    def fit(self, matrix, features=None):
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self.scores[users]

    def params(self) -> dict[str, Any]:
        return {}


def test_evaluate_hand_computed():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32))  # u0 saw 0, u1 saw 3
    test = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 0, 0]], dtype=np.float32))  # right answers: 2 and 1
    # u0 scores 9 1 5 3 -> item 0 excluded -> ranking 2, 3, 1: hit at rank 1
    # u1 scores 4 1 2 8 -> item 3 excluded -> ranking 0, 2, 1: hit at rank 3
    rec = FixedScores([[9, 1, 5, 3], [4, 1, 2, 8]])
    out = evaluate(rec, train, test, np.array([0, 1]), ks=(1, 5), batch_size=1, n_boot=200)
    m = out["metrics"]
    assert out["n_users"] == 2
    assert m["ndcg@1"] == 0.5  # (1 + 0) / 2
    assert m["ndcg@5"] == pytest.approx((1 + 1 / np.log2(4)) / 2)  # (1 + 0.5) / 2 = 0.75
    assert m["recall@5"] == 1.0 and m["hitrate@1"] == 0.5
    assert m["precision@5"] == pytest.approx(0.2)  # one hit in 5 slots for each user
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)  # 0.6667
    assert m["coverage@100"] == 1.0  # lists {2,3,1} and {0,2,1} cover all 4 items
    lo, hi = out["ci"]["ndcg@5"]  # 10 is not among ks, so the largest k gets the interval
    assert 0.5 <= lo <= 0.75 <= hi <= 1.0


def test_evaluate_checks_shapes():
    rec = FixedScores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        evaluate(rec, sp.csr_matrix((2, 4)), sp.csr_matrix((2, 4)), np.array([0]))
    with pytest.raises(ValueError, match="differ"):
        evaluate(rec, sp.csr_matrix((2, 3)), sp.csr_matrix((2, 4)), np.array([0]))


def _events(rows: list[tuple[str, str, float, int]]) -> EventLog:
    n = len(rows)
    return EventLog(
        user_id=np.array([r[0] for r in rows], dtype=object),
        item_id=np.array([r[1] for r in rows], dtype=object),
        event=np.array(["rating"] * n, dtype=object),
        ts=np.array([r[3] for r in rows], dtype=np.int64),
        rating=np.array([r[2] for r in rows], dtype=np.float32),
        weight=np.full(n, np.nan, dtype=np.float32),
        platform=np.array([""] * n, dtype=object),
    )


RATINGS = [  # (user, item, rating, ts); positives are ratings >= 4
    ("u0", "a", 5, 1),
    ("u0", "b", 4, 2),
    ("u0", "c", 2, 3),
    ("u0", "d", 4, 4),
    ("u1", "a", 4, 5),
    ("u1", "b", 5, 6),
    ("u1", "d", 5, 7),
]


def test_average_ratings_exclude_held_out_pairs():
    ds = make_dataset([(u, i, t) for u, i, r, t in RATINGS if r >= 4])
    split = leave_last_out(ds)  # test: u0-d, u1-d; validation: u0-b, u1-b
    ev = _events(RATINGS)
    # test stage: everything but the test pairs. a: (5+4)/2 = 4.5, b: (4+5)/2 = 4.5, d: none -> NaN
    feats = stage_features(EvalData(ds, ev, {}), split, "test")
    assert feats.avg_rating[:2].tolist() == [4.5, 4.5] and np.isnan(feats.avg_rating[2])
    # validation stage also hides the validation pairs: b has no rating left
    feats = stage_features(EvalData(ds, ev, {}), split, "validation")
    assert feats.avg_rating[0] == 4.5 and np.isnan(feats.avg_rating[1])
    # item "c" has only a low rating, so it is not in the dataset and is ignored
    assert average_ratings(ev, ds).tolist() == [4.5, 4.5, 4.5]  # a (5+4)/2, b (4+5)/2, d (4+5)/2


def test_temporal_features_use_only_older_events():
    ds = make_dataset([(u, i, t) for u, i, r, t in RATINGS if r >= 4])  # ts 1 2 4 5 6 7
    split = temporal_split(ds, 0.5, 0.2)  # 6 rows: cut positions 3 (ts 5) and 4 (ts 6)
    assert split.info["cutoffs"] == [5, 6]
    feats = stage_features(EvalData(ds, _events(RATINGS), {}), split, "validation")
    # only events with ts < 5: a = 5, b = 4, d = 4
    assert feats.avg_rating.tolist() == [5.0, 4.0, 4.0]
    assert feats.last_ts.tolist() == [1, 2, 4]  # latest fitted positive per item
    assert feats.genres is None


def test_genre_matrix():
    cat = {"a": {"genres": ["Drama", "Comedy"]}, "b": {"genres": ["Drama"]}, "z": {"genres": ["Horror"]}}
    m, names = genre_matrix(["a", "b", "c"], cat)
    assert names == ["Comedy", "Drama"]
    assert m.toarray().tolist() == [[1, 1], [0, 1], [0, 0]]
