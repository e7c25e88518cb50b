"""The shared behavioural suite: every engine, and the trained model as the service loads it, against a small
matrix whose right answers are known (fit, score, exclusions, filters, explanations, save and load).

Two blocks: users 0-5 like items 0-4, users 6-11 like items 5-9. Each user has seen 4 of their block's
5 items; the one missing (item u % 5, shifted by 5 in block B) is their right answer. Hand-checked
values for each engine are in its own test module (test_itemknn.py, test_ease.py, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.model.artifacts import load_bundle, save_arrays_bundle
from app.model.base import Explanation, Recommender, csr_row, top_k, top_k_row
from app.model.engines import ENGINES, make_engine, too_large

N_USERS, N_ITEMS = 12, 10
ROWS, COLS = [], []
for u in range(N_USERS):
    base = 0 if u < 6 else 5
    for i in range(5):
        if i != u % 5:
            ROWS.append(u)
            COLS.append(base + i)
BLOCKS = sp.csr_matrix((np.ones(len(ROWS), np.float32), (ROWS, COLS)), shape=(N_USERS, N_ITEMS))
MISSING = np.array([(0 if u < 6 else 5) + u % 5 for u in range(N_USERS)])
BLOCK = np.repeat([0, 1], 5)  # the block of each item
# genre "a" for block A, "b" for block B (the heuristic's genre match separates the blocks)
FEATURES = ItemFeatures(
    genres=sp.csr_matrix(np.repeat(np.eye(2, dtype=np.float32), 5, axis=0)),
    genre_names=["a", "b"],
    avg_rating=np.full(N_ITEMS, np.nan, np.float32),
    last_ts=np.arange(N_ITEMS, dtype=np.int64),
)
PERSONALISED = {"itemknn", "ease", "als", "baseline", "nn", "nn (saved)", "hybrid"}
#: Engines whose explanation names history items (the others name parts of the score).
BY_HISTORY = {"itemknn", "ease", "als", "nn", "nn (saved)", "hybrid"}
# Small, fast settings for tiny data.
TEST_PARAMS = {
    "als": {"factors": 2, "regularization": 0.1, "iterations": 15},  # the data has rank 2
    "itemknn": {"neighbours": 5},
    "ease": {"l2": 1.0},
    "nn": {"epochs": 20, "batch_size": 8, "learning_rate": 0.05, "embedding_dim": 8, "ensemble": 1, "seed": 1},
}
TEST_PARAMS["hybrid"] = {
    "per_source": 5,
    "seed": 1,
    **{name: TEST_PARAMS[name] for name in ("als", "itemknn", "ease")},
    "nn": {k: v for k, v in TEST_PARAMS["nn"].items() if k != "seed"},
}


def save_and_load(model, directory: Path):
    """The trained model written as a model directory and loaded back as the service loads it."""
    hist = BLOCKS.tocsr()
    arrays = {
        "user_factors": model.user_factors,
        "history_factors": model.history_factors,
        "item_factors": model.item_factors,
        "item_bias": model.item_bias,
        "history_indptr": hist.indptr.astype(np.int64),
        "history_indices": hist.indices.astype(np.int64),
        "history_data": hist.data,
        "item_popularity": np.asarray(hist.sum(axis=0)).ravel().astype(np.float64),
        "item_avg_rating": np.full(N_ITEMS, np.nan, np.float32),
        "item_last_ts": np.arange(N_ITEMS, dtype=np.int64),
    }
    ids = [str(i) for i in range(N_ITEMS)]
    save_arrays_bundle(
        directory,
        arrays=arrays,
        user_ids=[f"u{u}" for u in range(N_USERS)],
        item_ids=ids,
        version="blocks",
        hyperparameters=model.params(),
    )
    return load_bundle(directory).scorer()


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, Recommender]:
    out = {name: make_engine(name, **TEST_PARAMS.get(name, {})).fit(BLOCKS, FEATURES) for name in sorted(ENGINES)}
    out["nn (saved)"] = save_and_load(out["nn"], tmp_path_factory.mktemp("saved") / "model")
    return out


@pytest.fixture(scope="module", params=[*sorted(ENGINES), "nn (saved)"])
def fitted(request, engines):
    return request.param, engines[request.param]


def test_every_engine_follows_the_contract(fitted):
    name, engine = fitted
    assert engine.name == name.split(" ")[0]
    assert isinstance(engine, Recommender)
    scores = engine.score(np.arange(N_USERS), BLOCKS)
    assert scores.shape == (N_USERS, N_ITEMS) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    assert isinstance(engine.params(), dict)
    assert engine.max_items is None or engine.max_items >= 10_000
    assert engine.online_updates


def test_every_engine_but_popular_follows_an_updated_history(fitted):
    """What ``online_updates`` promises: a history row with one more item changes the user's scores
    (the service re-scores users with online actions from that row), unless the engine says "none"."""
    _, engine = fitted
    row = BLOCKS[0].copy()
    extra = int(np.setdiff1d(np.arange(N_ITEMS), row.indices)[-1])
    updated = sp.csr_matrix(row + sp.csr_matrix(([1.0], ([0], [extra])), shape=row.shape))
    updated.sort_indices()
    before, after = engine.score(np.array([0]), row), engine.score(np.array([0]), updated)
    assert np.array_equal(before, after) == engine.online_updates.startswith("none")


def test_one_user_scores_as_in_a_batch(fitted):
    _name, engine = fitted
    batch = engine.score(np.arange(N_USERS), BLOCKS)
    for u in range(N_USERS):
        np.testing.assert_allclose(engine.score(np.array([u]), csr_row(BLOCKS, u))[0], batch[u], rtol=1e-5, atol=1e-6)


def test_seen_items_are_never_returned(fitted):
    name, engine = fitted
    idx, _ = top_k(engine.score(np.arange(N_USERS), BLOCKS), N_ITEMS, exclude=BLOCKS)
    for u in range(N_USERS):
        returned = idx[u][idx[u] >= 0]
        assert not set(returned) & set(BLOCKS[u].indices), f"{name} returned a seen item to user {u}"
        assert len(returned) == N_ITEMS - BLOCKS[u].nnz  # every unseen item is still ranked


def test_filters_keep_only_the_candidates_and_the_best_of_them_first(fitted):
    _name, engine = fitted
    other_block = BLOCK == 1
    for u in range(6):  # block-A users, asked for block-B items only
        scores = engine.score(np.array([u]), csr_row(BLOCKS, u))[0]
        idx, top = top_k_row(scores, 3, other_block, BLOCKS[u].indices)
        assert set(idx.tolist()) <= set(range(5, 10)) and len(idx) == 3
        assert top.tolist() == sorted(top.tolist(), reverse=True)


def test_block_users_get_their_block_item_first(fitted):
    name, engine = fitted
    idx, _ = top_k(engine.score(np.arange(N_USERS), BLOCKS), 1, exclude=BLOCKS)
    if name in PERSONALISED:
        assert idx[:, 0].tolist() == MISSING.tolist(), name
    else:  # most popular: the same list for everyone, the most popular unseen item first
        counts = np.asarray(BLOCKS.sum(axis=0)).ravel()
        for u in range(N_USERS):
            unseen = np.setdiff1d(np.arange(N_ITEMS), BLOCKS[u].indices)
            assert counts[idx[u, 0]] == counts[unseen].max()


def test_unknown_user_is_scored_from_the_history_row(fitted):
    name, engine = fitted
    history = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [5, 6, 7])), shape=(1, N_ITEMS))  # 3 block-B items
    scores = engine.score(np.array([-1]), history)
    assert scores.shape == (1, N_ITEMS) and np.isfinite(scores).all()
    idx, _ = top_k(scores, 2, exclude=history)
    if name in PERSONALISED:
        assert set(idx[0].tolist()) == {8, 9}, name  # the two unseen block-B items


def test_engines_explain_their_scores_with_what_they_scored_from(fitted):
    name, engine = fitted
    for u in range(N_USERS):
        own, other = BLOCKS[u].indices[:2], (BLOCKS[u].indices[:2] + 5) % 10  # two items of each block
        items = np.array([MISSING[u], 9 - MISSING[u]])  # the user's right answer and an item of the other block
        if name in BY_HISTORY:
            mixed = np.sort(np.concatenate([own, other]))
            row = sp.csr_matrix((np.ones(4, np.float32), np.zeros(4, int), [0, 4]), shape=(1, N_ITEMS))
            row.indices = mixed.astype(np.int32)
            why = engine.explain(u, row, items)
            assert why.items.tolist() == items.tolist() and why.history.tolist() == mixed.tolist()
            assert np.asarray(why.contributions).shape == (4, 2)
            # each item is explained by a history item of its own block, not by the other block's
            assert BLOCK[why.strongest_history()].tolist() == BLOCK[items].tolist(), (name, u)
            continue
        why = engine.explain(u, csr_row(BLOCKS, u), items)
        assert isinstance(why, Explanation) and why.contributions is None
        if name == "baseline":
            match = why.features["genre_match"]
            assert match[0] > 0 and match[1] == 0  # the user's own genre, not the other block's
            assert set(why.features) == {"genre_match", "popularity", "rating"}
        else:
            scores = engine.score(np.array([u]), csr_row(BLOCKS, u))[0]
            np.testing.assert_allclose(why.features["popularity"], scores[items])
            assert why.strongest_history().tolist() == [-1, -1]


def test_the_saved_model_scores_and_explains_as_the_trained_one(engines):
    trained, saved = engines["nn"], engines["nn (saved)"]
    users = np.arange(N_USERS)
    np.testing.assert_allclose(saved.score(users, BLOCKS), trained.score(users, BLOCKS), rtol=1e-6, atol=1e-6)
    items = np.arange(N_ITEMS)
    a, b = trained.explain(0, csr_row(BLOCKS, 0), items), saved.explain(0, csr_row(BLOCKS, 0), items)
    np.testing.assert_allclose(a.contributions, b.contributions, rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="already trained"):
        saved.fit(BLOCKS)


def test_make_engine_rejects_unknown_names_and_parameters_and_says_what_is_too_large():
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        make_engine("ease", lambda_=3)
    with pytest.raises(ValueError):
        make_engine("itemknn", neighbours=0)
    assert too_large("ease", 20_001) == "engine 'ease' is fitted on at most 20000 items; this model has 20001"
    assert too_large("ease", 20_000) is None and too_large("itemknn", 10**6) is None
