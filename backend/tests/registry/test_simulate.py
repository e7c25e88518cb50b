"""The MovieLens replay: held-out weeks become batches of new logs; never written inside the repository."""

from __future__ import annotations

import numpy as np
import pytest

from app.registry.simulate import REPO_ROOT, WEEK, simulate_movielens, split_by_weeks


def test_newest_weeks_are_cut_into_batches():
    last = 100 * WEEK
    ts = np.array([last, 10, last - WEEK, last - WEEK + 1, last - 2 * WEEK, last - 2 * WEEK + 1, 5])
    lines = [f"e{i}".encode() for i in range(ts.size)]
    base, batches = split_by_weeks(lines, ts, batches=2, weeks_per_batch=1)
    # edges: last-2w, last-1w, last; a batch holds (edge_b, edge_b+1]
    assert base == [b"e6", b"e1", b"e4"]  # oldest first
    assert batches == [[b"e5", b"e2"], [b"e3", b"e0"]]
    with pytest.raises(ValueError):
        split_by_weeks(lines, ts, batches=0, weeks_per_batch=1)


def test_simulation_refuses_to_write_inside_the_repository(tmp_path):
    with pytest.raises(ValueError, match="inside the repository"):
        simulate_movielens(tmp_path, work_dir=REPO_ROOT / "sim-scratch")
    assert not (REPO_ROOT / "sim-scratch").exists()
