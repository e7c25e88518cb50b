"""Item features per evaluation stage (``stage_features``): only what a model may see at its stage."""

from __future__ import annotations

import numpy as np

from app.data.features import average_ratings
from app.data.types import EventLog
from app.eval.data import EvalData, stage_features
from app.eval.splits import leave_last_out, temporal_split

from .conftest import make_dataset


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
