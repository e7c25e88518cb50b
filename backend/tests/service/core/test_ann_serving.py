"""The ANN path of the serving core (``Runtime.ann``) on the hand-made model with the threshold set low:
the same lists as the exact path, filters and exclusions exact, the exact path when the index cannot
answer, and no index at all below the threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model import ann
from app.service.core import strategies
from app.service.core.filters import Filters
from app.service.core.online import OnlineView
from tests.service.core.conftest import build_runtime
from tests.service.modeldir import ITEM_IDS, USER_IDS

pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def pair(model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ann")
    exact = build_runtime(model_dir, tmp, precompute_mb=0)
    approx = build_runtime(model_dir, tmp, precompute_mb=0, ann_min_items=1, ann_overfetch=1.0)
    return exact, approx


@pytest.fixture
def answered(monkeypatch):
    """Counts the requests the index answered (not None) and those it passed to the exact path."""
    counts = {"ann": 0, "exact": 0}
    real = ann.top

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        counts["ann" if got is not None else "exact"] += 1
        return got

    monkeypatch.setattr(ann, "top", spy)
    return counts


def same(a, b):
    """The same list; items tied with the last one may differ (the index need not find every tied item,
    e.g. d1, d3 and d4 share one direction, so their cosines to d2 are all 1)."""
    sa, sb = [it["score"] for it in a.items], [it["score"] for it in b.items]
    np.testing.assert_allclose(sa, sb, atol=1e-5)
    untied = [j for j, v in enumerate(sb) if abs(v - sb[-1]) > 1e-5]
    assert [a.items[j]["item_id"] for j in untied] == [b.items[j]["item_id"] for j in untied]
    assert a.total_candidates == b.total_candidates


def test_below_the_threshold_there_is_no_index(runtime):
    assert runtime.ann is None and "ann" not in runtime.ready_info()


def test_personal_lists_and_similar_items_equal_the_exact_path(pair, answered):
    exact, approx = pair
    assert approx.ann is not None and approx.ready_info()["ann"]["build_seconds"] >= 0
    for k in (1, 2, 3):
        for user in USER_IDS:
            same(strategies.recommend(approx, user, k, "nn"), strategies.recommend(exact, user, k, "nn"))
        for item in ITEM_IDS:
            same(strategies.similar(approx, item, k), strategies.similar(exact, item, k))
        same(
            strategies.recommend(approx, None, k, seed_item_ids=("a1", "c2")),
            strategies.recommend(exact, None, k, seed_item_ids=("a1", "c2")),
        )
    assert answered["ann"] > 0


def test_filters_and_exclusions_stay_exact_and_narrow_filters_go_exact(pair, answered):
    exact, approx = pair
    for user in USER_IDS:
        for f in (Filters(genres=("Drama",)), Filters(year_min=1995), Filters(genres=("Action",), year_max=1990)):
            got = strategies.recommend(approx, user, 2, "nn", filters=f)
            same(got, strategies.recommend(exact, user, 2, "nn", filters=f))
            seen = set(np.asarray(approx.seen(approx.user_index(user))).tolist())
            assert not seen & {approx.item_index(i) for i in got.item_ids}
        same(
            strategies.recommend(approx, user, 2, "nn", exclude_seen=False),
            strategies.recommend(exact, user, 2, "nn", exclude_seen=False),
        )
    assert answered["exact"] > 0  # the narrow filters left too few candidates: ranked exactly
    assert answered["ann"] > 0


def test_an_online_history_is_the_query(pair, answered):
    exact, approx = pair
    idx = np.array([approx.item_index("c1"), approx.item_index("c2")], np.intp)

    def view():
        return OnlineView(idx, np.ones(idx.size, np.float32), np.sort(idx), np.empty(0, np.intp))

    for user in ("u1", "u3", "stranger"):
        same(
            strategies.recommend(approx, user, 2, "nn", online=view()),
            strategies.recommend(exact, user, 2, "nn", online=view()),
        )
    assert answered["ann"] > 0


def test_a_second_load_reads_the_indexes_the_first_built(pair, model_dir):
    """A restart (or another worker) on the same data directory reads the cached indexes; the lists are the same."""
    _, approx = pair
    assert approx.ready_info()["ann"]["source"] == "built at load"
    cache = Path(approx.ready_info()["ann"]["cache_dir"])
    assert len(list(cache.glob("*.faiss"))) == 2
    again = build_runtime(model_dir, cache.parent, precompute_mb=0, ann_min_items=1, ann_overfetch=1.0)
    assert again.ready_info()["ann"]["source"] == "read from the cache"
    for user in USER_IDS:
        same(strategies.recommend(again, user, 3, "nn"), strategies.recommend(approx, user, 3, "nn"))


def test_diversified_lists_ask_the_index_for_their_pool_and_equal_the_exact_path(pair, answered):
    """A diversified list's pool (5 x k, at least 50 candidates) is asked of the index; on 12 items the index
    passes such a pool to the exact path, and the lists are the exact path's."""
    exact, approx = pair
    for user in USER_IDS:
        for diversity in (0.5, 1.0):
            got = strategies.recommend(approx, user, 3, "nn", diversity=diversity)
            assert got.items == strategies.recommend(exact, user, 3, "nn", diversity=diversity).items
    for item in ITEM_IDS:
        got = strategies.similar(approx, item, 3, diversity=0.5)
        assert got.items == strategies.similar(exact, item, 3, diversity=0.5).items
    assert answered["exact"] > 0
