"""Item features: the genre matrix in the fitted item order; what each user has seen; average ratings."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.features import average_ratings, genre_matrix, seen_matrix
from app.data.idmap import IdMap
from app.data.types import Coded, Dataset, EventLog


def test_genre_matrix():
    cat = {"a": {"genres": ["Drama", "Comedy"]}, "b": {"genres": ["Drama"]}, "z": {"genres": ["Horror"]}}
    m, names = genre_matrix(["a", "b", "c"], cat)
    assert names == ["Comedy", "Drama"]
    assert m.toarray().tolist() == [[1, 1], [0, 1], [0, 0]]


# (user, item, event, rating): "ghost" and "z" are not in the dataset, so their events are left out
ROWS = [
    ("u0", "a", "view", np.nan),
    ("u0", "b", "rating", 2.0),
    ("u0", "b", "rating", 4.0),
    ("u1", "a", "rating", 5.0),
    ("u1", "c", "skip", np.nan),
    ("ghost", "a", "rating", 1.0),
    ("u1", "z", "rating", 3.0),
]


def _events(coded: bool) -> EventLog:
    n = len(ROWS)
    return EventLog(
        user_id=_column([r[0] for r in ROWS], coded),
        item_id=_column([r[1] for r in ROWS], coded),
        event=_column([r[2] for r in ROWS], coded),
        ts=np.arange(n, dtype=np.int64),
        rating=np.array([r[3] for r in ROWS], dtype=np.float32),
        weight=np.full(n, np.nan, dtype=np.float32),
        platform=np.array([""] * n, dtype=object),
    )


def _column(values: list[str], coded: bool) -> np.ndarray | Coded:
    if not coded:
        return np.array(values, dtype=object)
    names = np.array(sorted(set(values))[::-1], dtype=object)  # the reader's order is not sorted
    position = {name: k for k, name in enumerate(names)}
    return Coded(np.array([position[v] for v in values], dtype=np.int32), names)


DATASET = Dataset(
    IdMap(["u0", "u1"]),
    IdMap(["a", "b", "c"]),
    np.array([0, 1], np.int32),
    np.array([1, 0], np.int32),
    np.ones(2, np.float32),
    np.array([2, 3], np.int64),
)


@pytest.mark.parametrize("coded", [False, True])
def test_seen_matrix_by_hand(coded):
    events = _events(coded)
    assert seen_matrix(events, DATASET).toarray().tolist() == [[1, 1, 0], [1, 0, 1]]
    assert seen_matrix(events, DATASET, {"rating"}).toarray().tolist() == [[0, 1, 0], [1, 0, 0]]
    assert seen_matrix(events, DATASET, {"view", "skip"}).toarray().tolist() == [[1, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize("coded", [False, True])
def test_average_ratings_by_hand(coded):
    # a: (5+1)/2, the unknown user's rating counts (an item's average is an item statistic); b: (2+4)/2
    got = average_ratings(_events(coded), DATASET)
    assert got[:2].tolist() == [3.0, 3.0] and np.isnan(got[2])
