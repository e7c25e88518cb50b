"""``Dataset.recency``: each positive's place in its user's history, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.idmap import IdMap
from app.data.types import Dataset


def test_places_from_oldest_to_newest_with_ties_sharing_their_mean():
    # u0: a at 10, b and c both at 30 -> places 1, 2.5, 2.5 of 3; u1: c at 1, a at 5 -> 1 and 2 of 2;
    # u1's repeated a (at 3 and 5) counts once, at its latest time.
    d = Dataset(
        IdMap(["u0", "u1"]),
        IdMap(["a", "b", "c"]),
        np.array([0, 0, 0, 1, 1, 1], np.int32),
        np.array([2, 0, 1, 0, 2, 0], np.int32),
        np.ones(6, np.float32),
        np.array([30, 10, 30, 3, 1, 5], np.int64),
    )
    r = d.recency()
    assert r.toarray() == pytest.approx(np.array([[1 / 3, 2.5 / 3, 2.5 / 3], [1.0, 0.0, 0.5]]))
    m = d.matrix()
    assert np.array_equal(r.indptr, m.indptr) and np.array_equal(r.indices, m.indices)  # aligned with matrix()
