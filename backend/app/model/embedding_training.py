"""How the Keras embedding model is trained: the Keras layers, one ensemble member's loop, the loss steps.

Imported only when a model is trained or a saved ``model.keras`` is loaded, so the NumPy-only
engines and the service never pay for TensorFlow. The losses are described in ``app.model.embedding``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.sampling import POPULARITY_POWER, NegativeSampler
from app.model import distribution
from app.model.embedding_scoring import pool_norm
from app.model.tensorflow_setup import import_keras as _keras

#: Training keeps a dense copy of the users x items matrix up to this many cells (128 MB as float32).
DENSE_ROWS_LIMIT = 2**25
#: The multinomial loss runs up to ``MAX_STACK`` consecutive batches of users in one compiled call,
#: as long as their inputs hold at most ``STACK_CELLS`` cells (4 MB as float32): MovieLens 100K's
#: batches of 17 users cost more to launch one by one than to compute (an epoch took 0.075 s in 56
#: calls, 0.036 s in 4), while batches of a million cells gained nothing from deeper stacks.
STACK_CELLS = 2**20
MAX_STACK = 16
#: Below this share of positive cells a small matrix's batches are drawn per positive, as a large one's
#: are; denser ones (MovieLens 100K: 4%) keep their per-cell draws, a few ms an epoch either way.
SPARSE_DRAWS_DENSITY = 0.01


def variable_scope():
    """Where the model's and the optimizer's variables are created: the active strategy's scope (each
    worker's copy of a variable is then updated with the all-reduced gradients), else nowhere special."""
    dist = distribution.active()
    return dist.strategy.scope() if dist is not None else contextlib.nullcontext()


def fit_member(model: Any, x: sp.csr_matrix, seed: int, on_epoch, recency: sp.csr_matrix | None = None) -> None:
    """Train the layers of ``model.keras_model`` (one member of an ``EmbeddingRecommender``) on binary ``x``.

    Under an active ``app.model.distribution`` strategy every worker walks through the same batches
    (the order is drawn from ``seed`` alike on all of them) and trains on its share of each (every
    ``workers``-th row from its rank); its random draws (dropout, cut points, negatives) are its own.
    Each worker's loss is its part of the loss of the whole batch, so the summed gradients are those
    of one process training on that batch."""
    keras, tf = _keras()
    p = model.hyperparameters
    n_users, n_items = x.shape
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    dist = distribution.active()
    order_rng = rng  # one generator for the batches' order and the draws: a single process, as always
    share = slice(None)
    if dist is not None:
        rng = np.random.default_rng([seed, dist.rank])  # this worker's draws; the order stays common
        share = slice(dist.rank, None, dist.workers)
    keras_model = model.keras_model
    user_layer = keras_model.get_layer("user_factors")
    hist_layer = keras_model.get_layer("history_factors")
    item_layer = keras_model.get_layer("item_scores")
    user_w, hist_w = user_layer.embeddings, hist_layer.kernel
    item_w, bias_w = item_layer.item_factors, item_layer.item_bias
    train_vars = [hist_w, item_w, bias_w] + ([user_w] if p["user_embedding"] else [])
    per_batch = users_per_batch(p["batch_size"], n_users, x.nnz)
    lr: Any = p["learning_rate"]
    decay_steps = None
    if p["lr_schedule"] == "cosine":  # decays to 0 over the run: the last epochs average out the noise
        if p["loss"] == "multinomial":
            steps = -(-int(np.count_nonzero(np.diff(x.indptr))) // per_batch)
        else:
            steps = -(-x.nnz // p["batch_size"])
        decay_steps = max(1, steps * p["epochs"])
        lr = keras.optimizers.schedules.CosineDecay(p["learning_rate"], decay_steps=decay_steps)

    def adam(variables: list) -> Any:
        with variable_scope():
            optimizer = keras.optimizers.Adam(learning_rate=lr)
            optimizer.build(variables)
        return optimizer

    # one process, multinomial loss: a trainer (its compiled step) kept from the previous member
    trainer = None
    if p["loss"] == "multinomial" and dist is None:
        key = (n_users, n_items, p["embedding_dim"], p["user_embedding"], p["l2"], p["learning_rate"], decay_steps)
        trainer = StackedTrainer.checkout(key) or StackedTrainer(key, p, train_vars, adam)
        trainer.load(train_vars)
        optimizer = trainer.optimizer
    else:
        optimizer = adam(train_vars)

    rows = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(x.indptr))
    cols = x.indices.astype(np.int32)
    dropout = p["history_dropout"]
    future = p["future_share"] if recency is not None and p["loss"] == "multinomial" else 0.0
    if future > 0:
        if recency.shape != x.shape:
            raise ValueError(f"recency has shape {recency.shape}, the matrix {x.shape}")
        recency = sp.csr_matrix(recency, dtype=np.float32)
    k = p["num_negatives"]
    full_softmax = p["loss"] == "softmax" and k == 0
    sampler = None
    if p["loss"] == "multinomial":
        k = 0
    log_q = np.zeros(n_items, np.float32)
    if k > 0:
        sampler = NegativeSampler(x, k, p["negative_sampling"], seed=seed)
        if dist is not None:
            sampler.rng = rng  # each worker its own negatives
        if p["negative_sampling"] == "popularity":
            w = np.bincount(cols, minlength=n_items).astype(np.float64) ** POPULARITY_POWER
            q = w / w.sum() if w.sum() > 0 else np.full(n_items, 1.0 / n_items)
        else:
            q = np.full(n_items, 1.0 / n_items)
        log_q = np.log(np.maximum(q * k, 1e-12)).astype(np.float32)
    model._log_q = log_q
    log_q_t = tf.constant(log_q)
    l2 = float(p["l2"])
    use_user = p["user_embedding"]
    bce = p["loss"] == "bce"

    def user_part(sp_hist, inv, users, items, target_w, norm):
        summed = tf.sparse.sparse_dense_matmul(sp_hist, hist_w)  # unique users x d
        pooled = (tf.gather(summed, inv) - target_w[:, None] * tf.gather(hist_w, items)) / norm[:, None]
        reg = tf.reduce_sum(tf.square(pooled))
        if use_user:
            own = tf.gather(user_w, users)
            reg += tf.reduce_sum(tf.square(own))
            pooled = pooled + own
        return pooled, reg

    spec = [
        tf.SparseTensorSpec([None, n_items], tf.float32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([None], tf.float32),
        tf.TensorSpec([None, None], tf.int32),
    ]

    def mean(values, whole):
        """One process: the batch's mean; a worker: its rows' part of the mean over the ``whole`` batch."""
        return tf.reduce_mean(values) if whole is None else tf.reduce_sum(values) / whole

    def positive_step(sp_hist, inv, users, items, target_w, norm, cands, whole=None):
        with tf.GradientTape() as tape:
            vec, reg = user_part(sp_hist, inv, users, items, target_w, norm)
            if full_softmax:
                logits = tf.matmul(vec, item_w, transpose_b=True) + bias_w[None, :]
                loss = mean(tf.nn.sparse_softmax_cross_entropy_with_logits(items, logits), whole)
                reg += tf.reduce_sum(tf.square(tf.gather(item_w, items)))
            else:
                emb = tf.gather(item_w, cands)  # B x (1+k) x d
                logits = tf.einsum("bd,bkd->bk", vec, emb) + tf.gather(bias_w, cands)
                if bce:
                    labels = tf.concat([tf.ones_like(logits[:, :1]), tf.zeros_like(logits[:, 1:])], axis=1)
                    per = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
                    loss = mean(tf.reduce_sum(per, axis=1), whole)
                else:
                    logits = logits - tf.gather(log_q_t, cands)
                    loss = mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros_like(items), logits), whole)
                reg += tf.reduce_sum(tf.square(emb))
            batch = tf.cast(tf.shape(items)[0], tf.float32) if whole is None else whole
            total = loss + l2 * reg / batch
        grads = tape.gradient(total, train_vars)
        optimizer.apply_gradients(zip(grads, train_vars, strict=False))  # under a strategy: all-reduced first
        return loss

    if dist is None:
        step = tf.function(positive_step, input_signature=spec, reduce_retracing=True)
    else:

        @tf.function(input_signature=[*spec, tf.TensorSpec([], tf.float32)], reduce_retracing=True)
        def step(*batch):
            return dist.strategy.run(positive_step, args=batch)

    n = cols.size
    bs = p["batch_size"]

    def positive_batches():
        """Per positive: the user pooled from the rest of their history, the item against sampled negatives."""
        order = order_rng.permutation(n)
        for start in range(0, n, bs):
            sel = order[start : start + bs]
            whole = np.float32(sel.size)
            sel = sel[share]
            users, items = rows[sel], cols[sel]
            uniq, inv = np.unique(users, return_inverse=True)
            inv = inv.astype(np.int32).reshape(-1)
            sp_hist, target_w, norm = _batch_context(x[uniq], inv, items, dropout, rng, p["history_pooling"])
            if sampler is not None:
                cands = np.concatenate([items[:, None], sampler.sample(users)], axis=1).astype(np.int32)
            else:
                cands = items[:, None]
            if dist is not None:  # the whole batch's size: each worker's loss is its part of the batch's mean
                yield sp_hist, inv, users, items, target_w, norm, cands, whole
            else:
                yield sp_hist, inv, users, items, target_w, norm, cands

    # A large or sparse matrix's batches are drawn per positive rather than per cell: at 138,000 x
    # 27,000 a batch of 280 users has 16,000 positives in 7.6M cells, and the per-cell draws cost 2/3 of
    # each epoch; on a shop's 14,000 x 2,366 (0.4% positive) an epoch's draws took 0.07 s instead of 0.27.
    small = n_users * n_items <= DENSE_ROWS_LIMIT
    aligned = future <= 0 or (np.array_equal(recency.indptr, x.indptr) and np.array_equal(recency.indices, x.indices))
    sparse_draws = aligned and (not small or x.nnz < SPARSE_DRAWS_DENSITY * n_users * n_items)
    # Per-cell draws take a small matrix's rows from a dense copy: slicing the CSR cost ~15% of a fit.
    x_dense = x.toarray() if small and not sparse_draws else None
    place_dense = recency.toarray() if x_dense is not None and future > 0 else None

    def rows_of(users: np.ndarray, dense: np.ndarray | None, matrix: sp.csr_matrix) -> np.ndarray:
        return dense[users] if dense is not None else matrix[users].toarray()

    def fill(users: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Write the inputs and targets of one batch of users into the zeroed ``inputs`` and ``targets``."""
        if sparse_draws:
            sparse_user_batch(
                x,
                recency if future > 0 else None,
                users,
                rng,
                dropout,
                future,
                p["future_window"],
                p["history_pooling"],
                out=(inputs, targets),
            )
            return
        dense = rows_of(users, x_dense, x)
        kept = dense * (rng.random(dense.shape) >= dropout)
        if future > 0:  # some users: the items after a random point of their history are the targets
            place = rows_of(users, place_dense, recency)
            cut = rng.uniform(1.0 - p["future_window"], 1.0, size=(users.size, 1))
            earlier = dense * (place <= cut)
            pick = (rng.random(users.size) < future) & (earlier.sum(axis=1) < dense.sum(axis=1))
            kept[pick] = earlier[pick]
        norm = pool_norm(kept.sum(axis=1), p["history_pooling"]).astype(np.float32)
        np.divide(kept, norm[:, None], out=inputs)
        np.subtract(dense, kept, out=targets)

    stack = stack_size(per_batch, n_items, distributed=dist is not None)

    def user_batches():
        """Per stack of up to ``stack`` consecutive equal-sized batches of users: ``[K, B, n_items]``
        inputs and targets (predict the items dropped from each history from the kept ones), ``[K, B]``
        users and how many of the K are batches (the rest is padding the step skips)."""
        active = order_rng.permutation(np.flatnonzero(np.diff(x.indptr) > 0)).astype(np.int32)
        cuts = [active[start : start + per_batch][share] for start in range(0, active.size, per_batch)]
        for calls, depth in stack_calls([users.size for users in cuts], stack, per_batch):
            yield stacked(cuts[calls], depth)

    def stacked(group: list[np.ndarray], depth: int) -> tuple:
        b = group[0].size
        inputs = np.zeros((depth, b, n_items), np.float32)  # padding slots stay untouched (calloc's zero pages)
        targets = np.zeros((depth, b, n_items), np.float32)
        users = np.zeros((depth, b), np.int32)
        for j, members in enumerate(group):
            fill(members, inputs[j], targets[j])
            users[j] = members
        # tensors here, in the prefetch thread: the copies overlap the previous step too
        return tf.convert_to_tensor(inputs), tf.convert_to_tensor(targets), tf.constant(users), tf.constant(len(group))

    if trainer is not None:
        batches_of, run, fused = user_batches, trainer.step, True
    elif p["loss"] == "multinomial":
        mstep = _multinomial_step(p, tf, n_users, n_items, hist_w, user_w, item_w, bias_w, train_vars, optimizer, dist)
        batches_of, run, fused = user_batches, mstep, True
    else:
        batches_of, run, fused = positive_batches, step, False
    for epoch in range(1, p["epochs"] + 1):
        t0 = time.perf_counter()
        # The losses stay tensors until the epoch ends: reading each one (float) made Python wait for
        # every step before preparing the next batch, 0.4 s of a 2.2 s epoch at 750,000 positives.
        losses, batches = [], 0
        for batch in prefetched(batches_of()):
            losses.append(run(*batch))
            batches += int(batch[-1]) if fused else 1
        total_loss = float(tf.add_n(losses)) if losses else 0.0
        if dist is not None:  # each worker's losses are its parts of the batches' losses
            total_loss = dist.all_reduce_sum(total_loss)
        logs = {"loss": total_loss / max(1, batches), "seconds": time.perf_counter() - t0}
        model.history_.append(logs)
        if on_epoch is not None:
            if trainer is not None:  # the callback may read the model's weights
                trainer.store(train_vars)
            on_epoch(epoch, logs)
        elif model.verbose:
            print(f"epoch {epoch}/{p['epochs']}: loss {logs['loss']:.4f} ({logs['seconds']:.1f}s)", flush=True)
    if trainer is not None:
        trainer.store(train_vars)
        trainer.checkin()
    if dist is not None:  # mirrored variables stay equal by construction; a cheap check that they did
        dist.agree(
            "weights after training", *(hashlib.sha256(np.asarray(v.numpy()).tobytes()).hexdigest() for v in train_vars)
        )


class StackedTrainer:
    """Working copies of one member's trained variables, their Adam and the compiled multinomial step
    (``_multinomial_step``), kept for the next member of the same shape and hyperparameters (``key``).

    Each ``tf.function`` closes over its variables, so a step built per member was traced and
    XLA-compiled per member (about 2 s each on MovieLens 100K, longer than 40 of its epochs). Here a
    member's weights are copied in (``load``, which also resets Adam) and out (``store``), and the
    compiled step is reused. One idle trainer is kept (``checkin``); a fit running beside another in the
    same process takes it out (``checkout``) or builds its own, never shares it."""

    _idle: ClassVar[dict[tuple, StackedTrainer]] = {}
    _lock = threading.Lock()

    def __init__(self, key: tuple, p: dict[str, Any], like: list, adam) -> None:
        keras, tf = _keras()
        n_users, n_items = key[0], key[1]
        self.key = key
        self.variables = [keras.Variable(np.zeros(v.shape, np.float32), trainable=True) for v in like]
        self.optimizer = adam(self.variables)
        self.fresh = [np.array(v.numpy()) for v in self.optimizer.variables]  # Adam as built: step 0, no moments
        hist, item, bias = self.variables[:3]
        user = self.variables[3] if p["user_embedding"] else None
        self.step = _multinomial_step(p, tf, n_users, n_items, hist, user, item, bias, self.variables, self.optimizer)

    @classmethod
    def checkout(cls, key: tuple) -> StackedTrainer | None:
        with cls._lock:
            return cls._idle.pop(key, None)

    def checkin(self) -> None:
        with self._lock:
            StackedTrainer._idle = {self.key: self}  # only the latest shape: at most one model's copies held

    def load(self, member_vars: list) -> None:
        for mine, theirs in zip(self.variables, member_vars, strict=True):
            mine.assign(theirs.numpy())
        for v, fresh in zip(self.optimizer.variables, self.fresh, strict=True):
            v.assign(fresh)

    def store(self, member_vars: list) -> None:
        for mine, theirs in zip(self.variables, member_vars, strict=True):
            theirs.assign(mine.numpy())


def sparse_user_batch(
    x: sp.csr_matrix,
    recency: sp.csr_matrix | None,
    users: np.ndarray,
    rng: np.random.Generator,
    dropout: float,
    future: float,
    window: float,
    pooling: str,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense (inputs, targets) of the multinomial loss for ``users`` of binary ``x``, drawn per positive.

    Each positive is kept as input with probability 1 - ``dropout`` and is a target otherwise; with
    ``recency`` (aligned with ``x``), a ``future`` share of the users instead keep the positives placed
    at or before a cut drawn in the newest ``window`` of their history and target the later ones
    (when there are any). Inputs are pooled (``pooling``) over the kept positives. They are written into
    ``out`` (two zeroed ``[len(users), n_items]`` arrays) when it is given."""
    starts = x.indptr[users]
    counts = x.indptr[users + 1] - starts  # not np.diff of the whole indptr for every batch
    r = np.repeat(np.arange(users.size), counts)  # batch row of each positive
    at = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))  # into x.indices
    c = x.indices[at]
    keep = rng.random(at.size) >= dropout
    if recency is not None and future > 0:
        cut = rng.uniform(1.0 - window, 1.0, size=users.size)
        early = recency.data[at] <= cut[r]
        pick = (rng.random(users.size) < future) & (np.bincount(r, early, minlength=users.size) < counts)
        keep = np.where(pick[r], early, keep)
    norm = pool_norm(np.bincount(r, keep, minlength=users.size), pooling).astype(np.float32)
    if out is None:
        out = np.zeros((users.size, x.shape[1]), np.float32), np.zeros((users.size, x.shape[1]), np.float32)
    inputs, targets = out
    inputs[r[keep], c[keep]] = 1.0 / norm[r[keep]]
    targets[r[~keep], c[~keep]] = 1.0
    return inputs, targets


def prefetched(batches: Iterator[tuple]) -> Iterator[tuple]:
    """``batches``, each built in a thread while the previous one trains: NumPy prepares the next batch
    while TensorFlow runs a step. One thread, in order, so the batches (and their random draws) are
    exactly those of the plain loop."""
    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = pool.submit(next, batches, None)
            yield batch


def users_per_batch(batch_size: int, n_users: int, n_positives: int) -> int:
    """Users in a batch of the multinomial loss: about ``batch_size`` positives."""
    return max(1, round(batch_size * n_users / max(1, n_positives)))


def stack_size(per_batch: int, n_items: int, distributed: bool = False) -> int:
    """How many batches of ``per_batch`` users one compiled multinomial call runs (``STACK_CELLS``,
    ``MAX_STACK``); one under a strategy, whose collectives run outside the compiled part."""
    if distributed:
        return 1
    return int(np.clip(STACK_CELLS // max(1, per_batch * n_items), 1, MAX_STACK))


def stack_calls(sizes: list[int], depth: int, full: int) -> list[tuple[slice, int]]:
    """An epoch's compiled calls over batches of ``sizes`` users: per call, which batches it runs
    (consecutive, of one size, at most ``depth``) and the depth of its stack: ``depth`` for batches of
    the ``full`` size (a short stack is padded, so every such call reuses one compiled program), its
    own length for the short last batch."""
    calls, start = [], 0
    for end in range(1, len(sizes) + 1):
        if end == len(sizes) or end - start == depth or sizes[end] != sizes[start]:
            calls.append((slice(start, end), depth if sizes[start] == full else end - start))
            start = end
    return calls


def _multinomial_step(
    p: dict[str, Any], tf, n_users, n_items, hist_w, user_w, item_w, bias_w, train_vars, optimizer, dist=None
):
    """Steps of the multinomial loss (softmax over every item the input does not hold) over a stack:
    ``step(inputs, targets, users, n)`` runs the first ``n`` of the ``[K, B, n_items]`` batches in
    order, one optimizer update each, and returns their summed loss.

    Under a strategy (``dist``; stacks of one) each worker's loss is its part of the whole batch's: its
    targets' log-likelihood over the targets of every worker (one all-reduce of two numbers per step),
    the item penalty split evenly, so the summed gradients are those of the whole batch in one process."""
    l2, use_user = float(p["l2"]), p["user_embedding"]
    workers = dist.workers if dist is not None else 1
    spec = [
        tf.TensorSpec([None, None, n_items], tf.float32),
        tf.TensorSpec([None, None, n_items], tf.float32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([], tf.int32),
    ]

    def losses(inputs, targets, users, targets_in_batch, batch):
        vec = tf.matmul(inputs, hist_w)
        reg = tf.reduce_sum(tf.square(vec))
        if use_user:
            own = tf.gather(user_w, users)
            reg += tf.reduce_sum(tf.square(own))
            vec = vec + own
        logits = tf.matmul(vec, item_w, transpose_b=True) + bias_w[None, :]
        logits = tf.where(inputs > 0, tf.constant(-1e9, logits.dtype), logits)  # the input's items do not compete
        logp = tf.nn.log_softmax(logits)
        loss = -tf.reduce_sum(targets * logp) / targets_in_batch
        item_reg = tf.reduce_sum(tf.square(item_w)) / n_users
        if workers > 1:  # every worker adds its share of the penalty on the whole table
            item_reg = item_reg / workers
        return loss, loss + l2 * (reg / batch + item_reg)

    if dist is None:

        def one_step(inputs, targets, users):
            with tf.GradientTape() as tape:
                batch = tf.cast(tf.shape(users)[0], tf.float32)
                loss, total = losses(inputs, targets, users, tf.maximum(tf.reduce_sum(targets), 1.0), batch)
            grads = tape.gradient(total, train_vars)
            optimizer.apply_gradients(zip(grads, train_vars, strict=False))
            return loss

        # XLA fuses the logits, mask and softmax (12% less time per fit on ML-100K, 2 cores), and the
        # loop over the stack runs inside one call
        @tf.function(input_signature=spec, reduce_retracing=True, jit_compile=True)
        def mstep(inputs, targets, users, n):
            total = tf.constant(0.0)
            for i in tf.range(n):
                total += one_step(inputs[i], targets[i], users[i])
            return total

        return mstep

    scalar = tf.TensorSpec([], tf.float32)
    single = [tf.TensorSpec([None, n_items], tf.float32)] * 2 + [tf.TensorSpec([None], tf.int32)]

    # XLA compiles the worker's own computation; the collectives (which XLA on CPU cannot) run outside it
    @tf.function(input_signature=[*single, scalar, scalar], reduce_retracing=True, jit_compile=True)
    def local_gradients(inputs, targets, users, targets_in_batch, batch):
        with tf.GradientTape() as tape:
            loss, total = losses(inputs, targets, users, targets_in_batch, batch)
        return loss, tape.gradient(total, train_vars)

    def replica_step(inputs, targets, users):
        sizes = tf.stack([tf.reduce_sum(targets), tf.cast(tf.shape(users)[0], tf.float32)])
        sizes = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, sizes)
        loss, grads = local_gradients(inputs, targets, users, tf.maximum(sizes[0], 1.0), sizes[1])
        optimizer.apply_gradients(zip(grads, train_vars, strict=False))  # all-reduces (sums) the gradients first
        return loss

    @tf.function(input_signature=spec, reduce_retracing=True)
    def dstep(inputs, targets, users, n):
        return dist.strategy.run(replica_step, args=(inputs[0], targets[0], users[0]))

    return dstep


def _batch_context(
    rows: sp.csr_matrix, inv: np.ndarray, items: np.ndarray, dropout: float, rng: np.random.Generator, pooling: str
):
    """The batch's history rows (each entry kept with probability 1 - dropout) as a SparseTensor,
    whether each example's target is among them (it is subtracted: predict an item from the others),
    and the pooling norm of what remains."""
    _, tf = _keras()
    coo = rows.tocoo()  # CSR rows in order, sorted columns
    r, c = coo.row.astype(np.int64), coo.col.astype(np.int64)
    n_items = rows.shape[1]
    if dropout > 0:
        keep = rng.random(r.size) >= dropout
        r, c = r[keep], c[keep]
    keys = r * n_items + c
    query = inv.astype(np.int64) * n_items + items
    pos = np.minimum(np.searchsorted(keys, query), max(0, keys.size - 1))
    target_in = (keys[pos] == query) if keys.size else np.zeros(query.size, bool)
    context = np.bincount(r, minlength=rows.shape[0])[inv] - target_in
    norm = pool_norm(context, pooling).astype(np.float32)
    norm[context <= 0] = np.inf  # nothing else in the history: the pooled part is 0
    sp_hist = tf.SparseTensor(np.stack([r, c], axis=1), np.ones(r.size, np.float32), rows.shape)
    return sp_hist, target_in.astype(np.float32), norm


def build_keras_model(n_users: int, n_items: int, dim: int, user_embedding: bool, seed: int = 0):
    """Functional model: inputs ``user`` (index) and ``history`` (pooled binary row) -> scores of every item."""
    keras, _ = _keras()
    _register(keras)
    with variable_scope():
        return _build_keras_model(keras, n_users, n_items, dim, user_embedding, seed)


def _build_keras_model(keras, n_users: int, n_items: int, dim: int, user_embedding: bool, seed: int):
    init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
    user = keras.Input(shape=(), dtype="int32", name="user")
    history = keras.Input(shape=(n_items,), dtype="float32", name="history")
    own = keras.layers.Embedding(
        max(1, n_users),
        dim,
        name="user_factors",
        embeddings_initializer=init if user_embedding else "zeros",
        trainable=user_embedding,
    )(user)
    pooled = keras.layers.Dense(
        dim,
        use_bias=False,
        name="history_factors",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1),
    )(history)
    vec = keras.layers.Add(name="user_vector")([own, pooled])
    scores = _ITEM_SCORES(n_items, dim, seed=seed + 2, name="item_scores")(vec)
    return keras.Model(inputs={"user": user, "history": history}, outputs=scores, name="embedding_recommender")


_ITEM_SCORES: Any = None


def _register(keras) -> None:
    """Define (once) the serialisable layer holding item factors and biases: ``scores = v @ Q.T + b``."""
    global _ITEM_SCORES
    if _ITEM_SCORES is not None:
        return

    @keras.saving.register_keras_serializable(package="recommender")
    class ItemScores(keras.layers.Layer):
        def __init__(self, n_items: int, dim: int, seed: int = 0, **kwargs):
            super().__init__(**kwargs)
            self.n_items, self.dim, self.seed = int(n_items), int(dim), int(seed)
            self.item_factors = self.add_weight(
                shape=(self.n_items, self.dim),
                name="item_factors",
                initializer=keras.initializers.RandomNormal(stddev=0.05, seed=self.seed),
            )
            self.item_bias = self.add_weight(shape=(self.n_items,), name="item_bias", initializer="zeros")

        def call(self, vectors):
            return keras.ops.matmul(vectors, keras.ops.transpose(self.item_factors)) + self.item_bias

        def get_config(self):
            return {**super().get_config(), "n_items": self.n_items, "dim": self.dim, "seed": self.seed}

    _ITEM_SCORES = ItemScores


def load_keras_model(path: str | os.PathLike[str]):
    """Load a saved ``model.keras`` (registers the custom layer first)."""
    keras, _ = _keras()
    _register(keras)
    return keras.saving.load_model(path, compile=False)
