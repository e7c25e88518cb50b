"""The online history without HTTP: folding activity, the neighbour penalty, the cache, and a model's seen items."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.aggregate import PositiveRule
from app.model.artifacts import load_bundle, save_arrays_bundle, seen_arrays
from app.service.core import strategies
from app.service.core.online import EMPTY, OnlineHistories, neighbour_push, penalise, summarise
from app.service.core.runtime import Runtime
from app.store.online_history import Activity
from tests.service.conftest import make_settings
from tests.service.modeldir import ITEM_IDS, USER_IDS, arrays, catalogue

RULE = PositiveRule()
SEEN = frozenset(RULE.weights)


def test_summarise_sums_positive_weights_and_keeps_every_seen_item():
    acts = [
        Activity("b", "like", 3.0),
        Activity("a", "view", 2.0),
        Activity("a", "click", 1.0),
        Activity("c", "rating", 1.0, rating=2.0),  # seen, not a positive
        Activity("d", "dislike", 0.5),
    ]
    user = summarise(acts, RULE, SEEN, {"dislike", "skip"})
    assert user.positives == {"b": 4.0, "a": 2.0}  # like 4; view 1 + click 1
    assert list(user.positives) == ["b", "a"]  # newest first: "because you liked" names the latest
    assert user.seen == ("b", "a", "c", "d") and user.negatives == ("d",) and user.events == 5


def test_penalise_pushes_by_cosine_times_the_spread_of_the_scores():
    scores = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    spread = float(np.std(scores))  # 1.118
    out = penalise(scores, np.array([0, 1, 3]), np.array([1.0, 0.9, 0.5], np.float32), penalty=1.0)
    np.testing.assert_allclose(out, [1 - spread, 2 - 0.9 * spread, 3.0, 4 - 0.5 * spread], rtol=1e-6)
    assert scores[0] == 1.0  # not changed in place
    demoted = penalise(scores, np.zeros(0, np.intp), np.zeros(0, np.float32), 1.0, demoted=np.array([3]))
    assert demoted.argmin() == 3  # below every other score


def test_the_push_reaches_each_negatives_nearest_items_above_the_floor():
    near = {0: (np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1])), 4: (np.array([2, 1]), np.array([0.8, 0.2]))}
    items, cos = neighbour_push(lambda i, n: (near[i][0][:n], near[i][1][:n]), np.array([0, 4]), 3, 0.3)
    assert dict(zip(items.tolist(), cos.tolist(), strict=True)) == pytest.approx({1: 0.9, 2: 0.8})


def test_the_cache_reads_each_user_once_until_invalidated():
    reads = []

    def read(user, **kw):
        reads.append((user, kw["after_event_id"]))
        return [Activity("a1", "like", 1.0)]

    h = OnlineHistories(read, RULE, seen_events=SEEN, max_users=2)
    assert h.cached("u") is None
    assert h.load("u").positives == {"a1": 4.0}
    assert h.cached("u") is not None and len(reads) == 1
    h.invalidate(["u"])
    assert h.cached("u") is None
    h.load("u")
    assert h.cached("u") is not None  # read after the invalidation: kept
    h.use_cutoff((7, 0))
    h.load("u")
    assert reads[-1] == ("u", 7)
    h.load("v"), h.load("w")
    assert len(h) == 2 and h.cached("u") is None  # least recently used is dropped


def test_a_read_that_raced_an_invalidation_is_not_cached():
    h: OnlineHistories

    def read(user, **kw):
        h.invalidate([user])  # a write lands while the old rows are being read
        return []

    h = OnlineHistories(read, RULE, seen_events=SEEN)
    assert h.load("u") is EMPTY
    assert h.cached("u") is None


def _runtime_with_seen(tmp_path, seen: dict[str, list[str]]) -> Runtime:
    m = sp.lil_matrix((len(USER_IDS), len(ITEM_IDS)), dtype=np.float32)
    for user, items in seen.items():
        for item in items:
            m[USER_IDS.index(user), ITEM_IDS.index(item)] = 1.0
    path = save_arrays_bundle(
        tmp_path / "model",
        arrays={**arrays(), **seen_arrays(m.tocsr())},
        user_ids=USER_IDS,
        item_ids=ITEM_IDS,
        catalogue=catalogue(),
        version="seen-v1",
        hyperparameters={"history_pooling": "mean", "embedding_dim": 3},
    )
    rt = Runtime(load_bundle(path), path, make_settings(path, tmp_path, min_history_for_nn=1))
    rt.check()
    return rt


@pytest.mark.parametrize("engine", ["nn", "itemknn", "popular"])
def test_items_a_user_saw_without_liking_are_never_recommended(tmp_path, engine):
    """u2 liked c1 and rated c2 one star (seen, not a positive): c2 is in no list for u2."""
    rt = _runtime_with_seen(tmp_path, {"u2": ["c2"]})
    assert rt.seen(rt.user_index("u2")).tolist() == [ITEM_IDS.index("c1"), ITEM_IDS.index("c2")]
    asyncio.run(rt.engines.ensure(engine))
    ids = strategies.recommend(rt, "u2", 11, engine).item_ids
    assert "c2" not in ids and "c1" not in ids and len(ids) == 10
