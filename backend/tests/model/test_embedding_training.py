"""Training the Keras model: dense and sparse batches make the same model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from app.model.embedding import EmbeddingRecommender

from .conftest import N_USERS, TINY_PARAMS, group_of_item, group_of_user, planted_matrix


def test_dense_and_sparse_batches_both_learn_the_planted_groups(planted, monkeypatch):
    """Small matrices are batched from a dense copy (per-cell draws), large ones per positive from the
    CSR (``sparse_user_batch``): different draws, and either model puts the user's own group first."""
    from app.model import embedding_training

    order = sp.csr_matrix(planted)
    order.data = np.random.default_rng(0).random(order.nnz).astype(np.float32)
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 30, "future_share": 0.5}
    dense = EmbeddingRecommender(**params).fit(planted, recency=order)
    monkeypatch.setattr(embedding_training, "DENSE_ROWS_LIMIT", 0)
    sparse = EmbeddingRecommender(**params).fit(planted, recency=order)
    users = np.arange(N_USERS)
    for model in (dense, sparse):
        scores = model.score(users, planted)
        scores[planted.toarray() > 0] = -np.inf  # unseen items only
        best = scores.argmax(axis=1)
        assert (group_of_item(best) == group_of_user(users)).mean() >= 0.9
    assert not np.allclose(dense.score(users, planted), sparse.score(users, planted))


def test_a_sparse_batch_by_hand() -> None:
    """Dropout splits each user's positives into inputs (pooled) and targets; a future-share user keeps
    the positives before the cut (places 0.25-0.75 < cut in [0.8, 1)) and targets the newest."""
    from app.model.embedding_training import sparse_user_batch

    x = sp.csr_matrix(np.array([[1, 1, 0, 1, 1], [0, 1, 1, 0, 0]], np.float32))
    place = sp.csr_matrix(np.array([[0.25, 0.5, 0, 0.75, 1.0], [0, 0.5, 1.0, 0, 0]], np.float32))
    rng = np.random.default_rng(0)
    inputs, targets = sparse_user_batch(x, None, np.array([0, 1]), rng, 0.5, 0.0, 0.2, "mean")
    assert ((inputs > 0) + targets == x.toarray()).all()  # each positive is an input or a target, never both
    for row in range(2):
        kept = inputs[row] > 0
        if kept.any():
            np.testing.assert_allclose(inputs[row][kept], 1.0 / kept.sum())  # mean pooling
    inputs, targets = sparse_user_batch(x, place, np.array([0]), rng, 0.5, 1.0, 0.2, "mean")
    np.testing.assert_allclose(inputs[0], [1 / 3, 1 / 3, 0, 1 / 3, 0])
    np.testing.assert_array_equal(targets[0], [0, 0, 0, 0, 1])
    inputs, targets = sparse_user_batch(x, None, np.array([1, 0]), rng, 1e-9, 0.0, 0.2, "none")
    np.testing.assert_array_equal(inputs, x.toarray()[[1, 0]])  # nothing dropped, no pooling
    assert not targets.any()


def test_stacked_calls_train_the_same_model_as_one_call_per_batch(planted, monkeypatch) -> None:
    """Up to ``MAX_STACK`` batches run in one compiled call (the last stack padded): the same batches,
    draws and updates as one call per batch, so the same model up to float rounding, in fewer calls;
    the members of an ensemble share one compiled step."""
    from app.model import embedding_training as et

    built, calls = [], []
    real = et._multinomial_step

    def counting(*args, **kwargs):
        step = real(*args, **kwargs)
        built.append(step)

        def run(inputs, targets, users, n):
            calls.append((int(inputs.shape[0]), int(n)))
            return step(inputs, targets, users, n)

        return run

    monkeypatch.setattr(et, "_multinomial_step", counting)
    # 24 positives a batch: 4 of the 40 users (6 positives each), 10 batches an epoch
    params = {
        **TINY_PARAMS,
        "loss": "multinomial",
        "history_dropout": 0.5,
        "batch_size": 24,
        "epochs": 3,
        "ensemble": 2,
    }
    scores = {}
    for depth, expected in [(16, [(16, 10)]), (4, [(4, 4), (4, 4), (4, 2)]), (1, [(1, 1)] * 10)]:
        monkeypatch.setattr(et, "MAX_STACK", depth)
        et.StackedTrainer._idle.clear()
        built.clear()
        calls.clear()
        model = EmbeddingRecommender(**params).fit(planted)
        assert len(built) == 1  # one compiled step for both members
        assert calls == expected * 3 * 2  # per epoch, per member
        scores[depth] = model.score(np.arange(N_USERS), planted)
    np.testing.assert_allclose(scores[16], scores[1], atol=1e-5)
    np.testing.assert_allclose(scores[4], scores[1], atol=1e-5)
    assert not np.allclose(
        scores[1], EmbeddingRecommender(**{**params, "seed": 8}).fit(planted).score(np.arange(N_USERS), planted)
    )  # another seed: another model (the comparison above can tell models apart)


def test_the_epoch_callback_reads_the_weights_trained_so_far(planted) -> None:
    """The compiled step trains copies of a member's weights; they are copied back before each epoch's
    callback, which may evaluate the model (the training CLI's held-out checks do)."""
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 3}
    model = EmbeddingRecommender(**params)
    seen = []

    def on_epoch(epoch, logs):
        model.pull_arrays()
        seen.append(model.item_factors.copy())

    model.fit(planted, on_epoch=on_epoch)
    assert len(seen) == 3 and not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])
    np.testing.assert_array_equal(seen[-1], model.item_factors)


def test_stack_depth_by_hand() -> None:
    """2^20 input cells per call at most, 16 batches at most, one under a distribution strategy."""
    from app.model.embedding_training import stack_size

    assert stack_size(17, 1447) == 16  # MovieLens 100K: 24,599 cells a batch
    assert stack_size(106, 2366) == 4  # 1,048,576 // 250,796
    assert stack_size(206, 5477) == 1  # 1,128,262 cells a batch
    assert stack_size(280, 27154) == 1  # ML-20M's size: 7.6M cells a batch
    assert stack_size(17, 1447, distributed=True) == 1


def test_stack_calls_by_hand() -> None:
    """Consecutive batches of one size, at most ``depth`` a call; full-sized stacks padded to ``depth``."""
    from app.model.embedding_training import stack_calls

    assert stack_calls([4] * 10 + [2], 4, 4) == [
        (slice(0, 4), 4),
        (slice(4, 8), 4),
        (slice(8, 10), 4),
        (slice(10, 11), 1),
    ]
    assert stack_calls([4, 4, 4], 1, 4) == [(slice(0, 1), 1), (slice(1, 2), 1), (slice(2, 3), 1)]
    assert stack_calls([3], 16, 4) == [(slice(0, 1), 1)]  # fewer users than a batch: one short batch
    assert stack_calls([], 16, 4) == []


def test_a_sparse_small_matrix_is_drawn_per_positive(monkeypatch) -> None:
    """Under 1% positive cells even a small matrix's batches are drawn per positive; denser ones per cell."""
    from app.model import embedding_training as et

    drawn = []
    real = et.sparse_user_batch
    monkeypatch.setattr(et, "sparse_user_batch", lambda *a, **k: drawn.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    params = {**TINY_PARAMS, "loss": "multinomial", "history_dropout": 0.5, "epochs": 1}
    cells = (rng.random((50, 2000)) < 0.005) | np.eye(50, 2000, dtype=bool)  # every user has a positive
    EmbeddingRecommender(**params).fit(sp.csr_matrix(cells.astype(np.float32)))
    assert drawn
    drawn.clear()
    EmbeddingRecommender(**params).fit(planted_matrix())
    assert not drawn
