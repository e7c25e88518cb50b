"""The training-time held-out check: which positives are held out, and the metrics on them, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.idmap import IdMap
from app.data.types import Dataset
from app.eval.holdout import heldout_metrics, holdout_split


def test_holdout_split_by_hand():
    # user 0: 3 positives (latest: item 2), user 1: 2 positives (too few), user 2: 4 (latest: item 0)
    ds = Dataset(
        IdMap(["a", "b", "c"]),
        IdMap(["x", "y", "z", "w"]),
        user_idx=np.array([0, 0, 0, 1, 1, 2, 2, 2, 2], np.int32),
        item_idx=np.array([0, 1, 2, 0, 1, 3, 1, 2, 0], np.int32),
        weight=np.ones(9, np.float32),
        ts=np.array([1, 2, 3, 1, 5, 1, 2, 3, 9], np.int64),
    )
    train, held = holdout_split(ds, 1.0, seed=0)
    assert sorted(zip(held.user_idx.tolist(), held.item_idx.tolist(), strict=False)) == [(0, 2), (2, 0)]
    assert len(train) == 7
    none_train, none_held = holdout_split(ds, 0.0, seed=0)
    assert len(none_held) == 0 and len(none_train) == 9
    with pytest.raises(ValueError):
        holdout_split(ds, 1.5, seed=0)


def test_heldout_metrics_by_hand():
    # 12 items scored best-first in index order. User 0 trained on item 0, held-out item 3: ranking
    # 1, 2, 3, ... so a hit at rank 3, NDCG 1/log2(4) = 0.5. User 1 trained on item 1, held-out item 11:
    # ranking 0, 2, 3, ..., 10 (ten items), a miss. User 2 has nothing held out and is not counted.
    train = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [0, 1, 5])), shape=(3, 12))
    heldout = sp.csr_matrix(([1.0, 1.0], ([0, 1], [3, 11])), shape=(3, 12))

    def score(users: np.ndarray, hist: sp.csr_matrix) -> np.ndarray:
        assert hist.shape == (len(users), 12)
        return np.tile(-np.arange(12, dtype=np.float32), (len(users), 1))

    expected = {"recall@10": 0.5, "ndcg@10": 0.25, "hitrate@10": 0.5}  # no precision or MRR
    assert heldout_metrics(score, train, heldout) == pytest.approx(expected)
    assert heldout_metrics(score, train, heldout, batch=1) == pytest.approx(expected)  # batches add up the same
