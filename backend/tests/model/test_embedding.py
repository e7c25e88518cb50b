"""The Keras embedding model: planted structure, NumPy scoring by hand, cold users from their items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from app.model.base import Recommender, top_k
from app.model.embedding import EmbeddingRecommender
from app.model.embedding_scoring import pooled_rows

from .conftest import N_ITEMS, N_USERS, TINY_PARAMS, group_of_item, group_of_user


def test_learns_planted_groups(trained, planted):
    users = np.arange(N_USERS)
    ranked, _ = top_k(trained.score(users, planted), 3, exclude=planted)
    # every user's top unseen items come from their own group's half of the catalogue
    assert (group_of_item(ranked) == group_of_user(users)[:, None]).all()
    assert isinstance(trained, Recommender)
    assert trained.score(users, planted).shape == (N_USERS, N_ITEMS)
    assert trained.history_[-1]["loss"] < trained.history_[0]["loss"]


def test_unknown_user_scored_from_seed_items(trained):
    # a user the fit never saw, with two items of group 1 as seeds: the rest of group 1 ranks first
    seeds = sp.csr_matrix((np.ones(2, np.float32), ([0, 0], [12, 17])), shape=(1, N_ITEMS))
    ranked, _ = top_k(trained.score(np.array([-1]), seeds), 5, exclude=seeds)
    assert (group_of_item(ranked[0]) == 1).all()
    assert 12 not in ranked[0] and 17 not in ranked[0]
    # no history and no user embedding: the vector is zero, so scores are the item biases
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    np.testing.assert_allclose(trained.score(np.array([-1]), empty)[0], trained.item_bias, rtol=1e-6)


def test_history_shape_mismatch_is_clear(trained):
    with pytest.raises(ValueError, match="columns"):
        trained.score(np.array([0]), sp.csr_matrix((1, N_ITEMS + 1), dtype=np.float32))


@pytest.mark.parametrize(
    "bad",
    [
        {"embedding_dim": 0},
        {"epochs": 0},
        {"learning_rate": 0.0},
        {"loss": "mse"},
        {"negative_sampling": "hard"},
        {"history_pooling": "max"},
        {"l2": -1.0},
        {"num_negatives": 0, "loss": "bce"},
        {"loss": "multinomial", "history_dropout": 0.0},
        {"history_dropout": 1.0},
        {"ensemble": 0},
        {"lr_schedule": "step"},
        {"future_share": 1.5},
        {"future_window": 0.0},
    ],
)
def test_bad_hyperparameters(bad):
    with pytest.raises(ValueError):
        EmbeddingRecommender(**bad)


def test_same_seed_same_model(planted):
    params = {**TINY_PARAMS, "epochs": 2}
    a = EmbeddingRecommender(**params).fit(planted)
    b = EmbeddingRecommender(**params).fit(planted)
    users = np.arange(4)
    np.testing.assert_allclose(a.score(users, planted[users]), b.score(users, planted[users]), rtol=1e-5, atol=1e-6)


def test_every_loss_trains(planted):
    for params in (
        {"loss": "bce", "negative_sampling": "uniform", "history_dropout": 0.0},
        {"loss": "softmax", "num_negatives": 0, "history_dropout": 0.0},
        {"loss": "softmax", "negative_sampling": "popularity", "history_dropout": 0.3},
        {"loss": "multinomial", "history_dropout": 0.5},
    ):
        m = EmbeddingRecommender(**{**TINY_PARAMS, "epochs": 2, **params}).fit(planted)
        assert np.isfinite(m.score(np.arange(3), planted[:3])).all()
        items = np.array([planted[0].indices[0], planted[1].indices[0]])
        held = m.heldout_loss(np.array([0, 1]), items, planted, planted)
        assert np.isfinite(held) and held > 0
        if params["loss"] == "multinomial" or params.get("num_negatives") == 0:
            # the full softmax by hand, in float64: -log p(item) over every item (multinomial: the
            # user's other history items do not compete)
            logits = m.score(np.array([0, 1]), planted[:2]).astype(np.float64)
            if params["loss"] == "multinomial":
                for r, item in enumerate(items):
                    others = planted[r].indices[planted[r].indices != item]
                    logits[r, others] = -np.inf
            expected = np.mean([logsumexp(logits[r]) - logits[r, item] for r, item in enumerate(items)])
            assert held == pytest.approx(expected, rel=1e-6)


def test_ensemble_scores_the_mean_of_its_members(planted):
    params = {**TINY_PARAMS, "epochs": 2}
    members = [EmbeddingRecommender(**{**params, "seed": s}).fit(planted) for s in (7, 1007)]
    both = EmbeddingRecommender(**{**params, "seed": 7, "ensemble": 2}).fit(planted)
    assert both.item_factors.shape == (N_ITEMS, 2 * params["embedding_dim"])
    users = np.arange(N_USERS)
    expected = (members[0].score(users, planted) + members[1].score(users, planted)) / 2
    np.testing.assert_allclose(both.score(users, planted), expected, rtol=1e-4, atol=1e-5)
    # the Keras model holds the same concatenated weights
    keras_scores = both.keras_model.predict(
        {"user": users.astype(np.int32), "history": pooled_rows(planted, both.params()["history_pooling"]).toarray()},
        verbose=0,
    )
    np.testing.assert_allclose(keras_scores, expected, rtol=1e-4, atol=1e-5)


def test_future_share_learns_what_comes_later_in_a_history():
    """Every user took 8 of items 0-9 first, then 2 of items 10-19 (so those are 4x less popular):
    predicting the newest part of each history from the rest puts the later items first for a user
    who has only early ones; random dropout alone ranks by co-occurrence and popularity."""
    rng = np.random.default_rng(3)
    rows, cols, place = [], [], []
    for u in range(60):
        items = np.r_[rng.choice(10, 8, replace=False), rng.choice(10, 2, replace=False) + 10]
        rows += [u] * 10
        cols += items.tolist()
        place += [(i + 1) / 10 for i in range(10)]
    m = sp.csr_matrix((np.ones(600, np.float32), (rows, cols)), shape=(60, 20))
    recency = sp.csr_matrix((np.array(place, np.float32), (rows, cols)), shape=(60, 20))
    early_user = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [0, 1, 2])), shape=(1, 20))
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 40}
    for share, later_first in ((1.0, True), (0.0, False)):
        model = EmbeddingRecommender(**params, future_share=share).fit(m, recency=recency)
        scores = model.score(np.array([-1]), early_user)[0]
        assert bool(scores[10:].min() > scores[3:10].max()) == later_first
