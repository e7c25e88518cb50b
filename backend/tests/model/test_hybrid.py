"""The hybrid engine's own parts: the later slice, the feature store against hand-computed values, a ranker
that never learns from the sources' training data, a planted structure only two sources together find,
and save/restore. The shared engine suite (test_engines.py) runs it through the common contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import app.model.hybrid as hybrid_module
from app.data.features import ItemFeatures
from app.model.base import top_k
from app.model.feature_store import build_store, cross_features, genre_shares
from app.model.hybrid import HybridRecommender, later_slice
from app.model.sources import gather, union

DAY = 86_400
NN_SMALL = {"epochs": 3, "batch_size": 64, "embedding_dim": 8, "ensemble": 1}


def csr(rows, cols, data, shape, dtype=np.float32):
    m = sp.csr_matrix((np.asarray(data, dtype), (rows, cols)), shape=shape)
    m.sort_indices()
    return m


def test_later_slice_holds_out_each_rows_latest_share():
    # user 0: items 0..4 at days 5,1,4,2,3 -> latest 40% (2 items) are items 0 (day 5) and 2 (day 4)
    # user 1: 2 positives, fewer than 3: nothing held out
    m = csr([0] * 5 + [1, 1], [0, 1, 2, 3, 4, 0, 1], np.ones(7), (2, 5))
    t = csr([0] * 5 + [1, 1], [0, 1, 2, 3, 4, 0, 1], [5, 1, 4, 2, 3, 9, 8], (2, 5), np.int64)
    (early, early_ts), late = later_slice(m, t, 0.4)
    assert late[0].indices.tolist() == [0, 2] and late[1].nnz == 0
    assert early[0].indices.tolist() == [1, 3, 4] and early[1].indices.tolist() == [0, 1]
    assert early_ts[0].data.tolist() == [1, 2, 3]
    assert (early.multiply(late)).nnz == 0 and (early + late - m).nnz == 0


def test_later_slice_takes_at_least_one_and_breaks_ties_by_item():
    m = csr([0, 0, 0], [0, 1, 2], np.ones(3), (1, 3))
    t = csr([0, 0, 0], [0, 1, 2], [7, 7, 7], (1, 3), np.int64)
    (_early, _), late = later_slice(m, t, 0.1)  # floor(0.3) = 0 -> at least one
    assert late.indices.tolist() == [2]


def test_feature_store_against_hand_computed_values():
    # user 0: item 0 (weight 1, day 0), item 1 (weight 3, day 10); user 1: item 1 (weight 2, day 20)
    m = csr([0, 0, 1], [0, 1, 1], [1.0, 3.0, 2.0], (2, 3))
    t = csr([0, 0, 1], [0, 1, 1], [0, 10 * DAY, 20 * DAY], (2, 3), np.int64)
    genres = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]], np.float32))
    feats = ItemFeatures(genres=genres, genre_names=["a", "b"], avg_rating=np.array([4.0, np.nan, 3.0], np.float32))
    store = build_store(m, t, feats, half_life_days=10.0)
    assert store.reference_ts == 20 * DAY
    # user 0: 2 positives, weight 4, decayed 2^-2 + 2^-1 = 0.75, last event 10 days before the reference
    np.testing.assert_allclose(store.user[0], [2, 4, 0.75, 10])
    np.testing.assert_allclose(store.user[1], [1, 2, 1.0, 0])
    # item 1: 2 users, weight 5, decayed 0.5 + 1, last seen 0 days ago, first seen 10 days ago, rating unknown
    np.testing.assert_allclose(store.item[1, :5], [2, 5, 1.5, 0, 10])
    assert np.isnan(store.item[1, 5]) and store.item[0, 5] == 4.0
    assert np.isnan(store.item[2, 3])  # never seen: no days-since
    # genre shares: user 0 has items 0 (a) and 1 (a, b): a 2/3, b 1/3
    np.testing.assert_allclose(store.user_genres[0], [2 / 3, 1 / 3])
    cross = cross_features(store.user_genres[:1], store.item_genres, np.array([[2, 1, -1]]))
    np.testing.assert_allclose(cross[0], [[1 / 3, 1 / 3], [1.0, 2 / 3], [0, 0]], rtol=1e-6)


def test_an_online_row_updates_the_count_features_at_once():
    m = csr([0, 0], [0, 1], [1.0, 1.0], (1, 3))
    t = csr([0, 0], [0, 1], [0, 10 * DAY], (1, 3), np.int64)
    store = build_store(m, t, None, half_life_days=10.0)
    row = csr([0, 0, 0], [0, 1, 2], [1.0, 1.0, 2.0], (1, 3))
    feats, _ = store.user_rows(np.array([0]), row)
    np.testing.assert_allclose(feats[0], [3, 4, 0.5 + 1 + 1, 0])  # one new event, now
    same, _ = store.user_rows(np.array([0]), m)
    np.testing.assert_allclose(same[0], store.user[0])
    unknown, _ = store.user_rows(np.array([-1]), row)
    np.testing.assert_allclose(unknown[0], [3, 4, 3, 0])
    assert genre_shares(row, np.zeros((3, 0), np.float32)).shape == (1, 0)


def test_gather_unites_sources_and_keeps_every_sources_score_and_rank():
    class Fixed:
        def __init__(self, s):
            self.s = np.asarray(s, np.float32)

        def score(self, users, history):
            return np.tile(self.s, (history.shape[0], 1))

    sources = {"a": Fixed([5, 4, 3, 2, 1]), "b": Fixed([1, 2, 3, 4, 5])}
    history = csr([0], [0], [1.0], (1, 5))  # item 0 seen: never proposed
    c = gather(sources, np.array([0]), history, per_source=2)
    assert c.items.tolist() == [[1, 2, 4, 3]]  # a: 1, 2; then b: 4, 3
    assert c.ranks["a"].tolist() == [[1, 2, 0, 0]] and c.ranks["b"].tolist() == [[0, 0, 1, 2]]
    assert c.scores["b"].tolist() == [[2, 3, 5, 4]] and c.n_sources.tolist() == [[1, 1, 1, 1]]
    assert union(np.array([[3, -1, 3, 1], [2, 2, -1, -1]])).tolist() == [[3, 1], [2, -1]]


def _planted(seed: int = 0):
    """Two genres of 30 items. Each user liked 4 of their genre's 10 old favourites (items 0-9 or 30-39)
    long ago, and lately 4 of their genre's 6 new items (20-25 or 50-55), which all users watch now.
    The right answers are new AND in the user's genre: the trending list alone has both genres' new
    items, the genre list alone the old favourites (more positives overall)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 600, 60
    rows, cols, ts = [], [], []
    for u in range(n_users):
        g = u % 2
        old = rng.choice(10, 4, replace=False) + 30 * g
        new = rng.choice(6, 4, replace=False) + 20 + 30 * g
        rows += [u] * 8
        cols += [*old.tolist(), *new.tolist()]
        ts += [*(rng.integers(0, 100, 4) * DAY).tolist(), *(rng.integers(300, 400, 4) * DAY).tolist()]
    m = csr(rows, cols, np.ones(len(rows)), (n_users, n_items))
    t = csr(rows, cols, ts, (n_users, n_items), np.int64)
    genres = sp.csr_matrix(np.repeat(np.eye(2, dtype=np.float32), 30, axis=0))
    return m, t, ItemFeatures(genres=genres, genre_names=["a", "b"])


@pytest.fixture(scope="module")
def planted_hybrid():
    m, t, feats = _planted()
    (early, early_ts), late = later_slice(m, t, 0.3)  # each user's 2 latest positives: new items
    engine = HybridRecommender(per_source=15, seed=3, nn=NN_SMALL).fit(early, feats, timestamps=early_ts)
    return engine, early, late


def test_only_the_combination_of_two_sources_finds_the_planted_items(planted_hybrid):
    engine, early, late = planted_hybrid
    users = np.arange(early.shape[0])

    def hits(scores):
        idx = top_k(scores, 2, exclude=early)[0]
        return float(np.mean([np.isin(idx[u], late[u].indices).mean() for u in users]))

    combined = hits(engine.score(users, early))
    alone = {name: hits(src.score(users, early)) for name, src in engine.sources_.items()}
    # 2 answers among the 4 unseen new items of the user's genre: half of a top 2, by chance, at best
    assert alone["trending"] < 0.35 and alone["genre"] < 0.2, alone  # each source alone misses most
    assert combined > 0.42, (combined, alone)  # trending x genre affinity: the ranker finds them


def test_the_ranker_never_learns_from_the_sources_training_slice(monkeypatch):
    """Every label the ranker is trained or early-stopped on is a positive the sources and features
    were not fitted on."""
    m, t, feats = _planted(1)
    fitted: list[sp.csr_matrix] = []
    labels: list[tuple[int, int]] = []
    real_fit, real_frame = hybrid_module.fit_source, HybridRecommender._training_frame

    def spy_fit(name, engine, matrix, *args, **kwargs):
        fitted.append(matrix)
        return real_fit(name, engine, matrix, *args, **kwargs)

    def spy_frame(self, sources, store, early, late, users):
        x, y, g = real_frame(self, sources, store, early, late, users)
        # rebuild which (user, item) each positive label is, from the same candidates
        for u in users:
            row = late[u].indices
            labels.extend((int(u), int(i)) for i in row)
        return x, y, g

    monkeypatch.setattr(hybrid_module, "fit_source", spy_fit)
    monkeypatch.setattr(HybridRecommender, "_training_frame", spy_frame)
    HybridRecommender(per_source=10, seed=4, nn=NN_SMALL).fit(m, feats, timestamps=t)
    # every source is fitted twice: on the earlier slice, and on all positives to serve (the embedding
    # model's second fit runs in a thread beside the first, so the order of the fits says nothing)
    early_fits = [matrix for matrix in fitted if matrix.nnz != m.nnz]
    assert labels and len(early_fits) == len(fitted) // 2
    for matrix in early_fits:
        assert matrix.nnz < m.nnz
        assert not any(matrix[u, i] for u, i in labels[:500]), "a label was in a source's training data"


def test_state_restores_the_same_scores(planted_hybrid):
    engine, early, _ = planted_hybrid
    arrays, saved = engine.state()
    restored = HybridRecommender.restore(arrays, saved, engine.sources_["nn"], early)
    users = np.arange(50)
    np.testing.assert_allclose(restored.score(users, early[:50]), engine.score(users, early[:50]), rtol=1e-5, atol=1e-5)
    why = restored.explain(0, early[0], np.array([20, 21]))
    assert set(why.features) >= {"trending", "genre_match", "liked", "similar_users"}
    # explaining the list just scored reuses its features: the same reasons as computed afresh
    top = top_k(restored.score(np.array([3]), early[3]), 5, exclude=early[3])[0][0]
    cached = restored.explain(3, early[3], top)
    restored._last = None
    fresh = restored.explain(3, early[3], top)
    for name in fresh.features:
        np.testing.assert_allclose(cached.features[name], fresh.features[name], rtol=1e-5, atol=1e-6)


def test_validation_ranks_only_the_users_it_can_score_and_gets_the_same_figures(planted_hybrid, monkeypatch):
    """The ranker runs only for held-out users with a later positive among their candidates; the others'
    candidates hold no hit in any order, so NDCG@10 and Recall@10 are those of ranking every user."""
    from app.eval.metrics import ndcg_at_k, recall_at_k

    engine, early, _ = planted_hybrid
    monkeypatch.setattr(engine, "per_source", 4)  # fewer candidates than a list: the rest come after them
    users = np.arange(early.shape[0])
    rng = np.random.default_rng(5)
    truth_items = [rng.choice(np.setdiff1d(np.arange(early.shape[1]), early[u].indices)) for u in users]
    truth = csr(users, truth_items, np.ones(users.size), early.shape)
    predicted: list[int] = []
    real_predict = type(engine.ranker_).predict
    monkeypatch.setattr(
        type(engine.ranker_),
        "predict",
        lambda self, x, threads=1: predicted.append(len(x)) or real_predict(self, x, threads),
    )
    validation = engine._validation(early, truth, users)
    ranked_rows = sum(predicted)
    predicted.clear()
    everyone = top_k(engine.score(users, early), 10, exclude=early)[0]
    assert 0 < ranked_rows < sum(predicted)  # some users were ranked, not all
    for metric in (ndcg_at_k, recall_at_k):
        np.testing.assert_array_equal(metric(validation["ranked"]["hybrid"], truth, 10), metric(everyone, truth, 10))
    assert recall_at_k(everyone, truth, 10).mean() > 0.1


def test_bad_parameters_and_too_little_data_are_clear_errors():
    with pytest.raises(ValueError, match="per_source"):
        HybridRecommender(per_source=0)
    with pytest.raises(ValueError, match="label_share"):
        HybridRecommender(label_share=1.5)
    tiny = csr([0, 0, 0], [0, 1, 2], np.ones(3), (1, 3))
    with pytest.raises(ValueError, match="at least 10 users"):
        HybridRecommender(nn=NN_SMALL).fit(tiny)


def test_the_default_number_of_rankers_shrinks_as_the_training_set_grows():
    from app.model.ranker import members_for

    # ML-100K's training set (96,000 candidates) gets five; a 1M-event log's (675,000) gets one
    assert [members_for(n) for n in (0, 96_000, 100_000, 166_666, 250_000, 500_001, 1_700_000)] == [5, 5, 5, 3, 2, 1, 1]
    assert HybridRecommender().rankers is None and HybridRecommender(rankers=2).rankers == 2
    with pytest.raises(ValueError, match="rankers must be >= 1"):
        HybridRecommender(rankers=0)


def test_sample_negatives_keeps_every_positive_and_at_most_the_limit_of_negatives():
    from app.model.ranker import sample_negatives

    # three queries: 4 rows (1 positive), 2 rows (both negative), 5 rows (2 positives)
    y = np.array([0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0], np.float32)
    keep, sizes = sample_negatives(y, np.array([4, 2, 5]), 2, np.random.default_rng(0))
    assert sizes.tolist() == [3, 2, 4]
    assert keep[[1, 6, 9]].all()  # the positives
    assert [int((~y[a:b].astype(bool) & keep[a:b]).sum()) for a, b in ((0, 4), (4, 6), (6, 11))] == [2, 2, 2]
    same, _ = sample_negatives(y, np.array([4, 2, 5]), 2, np.random.default_rng(0))
    assert (same == keep).all()
    everything, sizes = sample_negatives(y, np.array([4, 2, 5]), 10, np.random.default_rng(1))
    assert everything.all() and sizes.tolist() == [4, 2, 5]


def test_the_two_embedding_fits_run_side_by_side_only_while_their_batches_are_small():
    """By hand: the shop log's batches of 103 users x 5,500 items (566,500 cells) run side by side; the
    20M-event log's 280 users x 27,154 items (7.6 million) one after the other; a loss drawn per
    positive always side by side."""
    engine = HybridRecommender()
    assert engine._side_by_side(14_000, 5_500, 138_861)
    assert not engine._side_by_side(138_000, 27_154, 8_064_563)
    assert HybridRecommender(nn={"loss": "bce"})._side_by_side(138_000, 27_154, 8_064_563)
