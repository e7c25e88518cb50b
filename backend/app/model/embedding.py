"""The Keras embedding recommender ("nn"): a user is the pooled embeddings of their items (+ their own).

    user_vec(u) = user_factors[u] + pool(history_u) @ history_factors
    score(u, i) = user_vec(u) . item_factors[i] + item_bias[i]

``pool`` divides the binary history row by n ("mean"), sqrt(n) ("sqrt") or 1 ("none"). Because a
user is built from their items, a user with new events or a few seed items is scored without
retraining, and serving is a NumPy dot product over the saved arrays (``app.model.artifacts``).

Training predicts held-back positives from the rest of a user's history (the way the model is
evaluated and served: rank new items from known ones). Three losses:

* ``multinomial`` (default): per batch of users, each history entry is dropped with probability
  ``history_dropout``; the kept items are pooled and a softmax over every item not kept is trained to
  put its mass on the dropped ones (a denoising, Mult-DAE-style objective). A whole user costs one
  row of logits, so an ML-100K epoch takes a fraction of a second and no negatives are sampled.
  With ``future_share`` > 0 and the order of each history (``fit(..., recency=Dataset.recency())``),
  that share of the users in a batch instead keeps the items before a random point in the newest
  ``future_window`` of their history (a share of it, oldest first) and predicts the ones after it:
  new items from known ones, the way the model is evaluated (latest positives) and served.
* ``bce``: per positive (u, i), binary cross-entropy of i (label 1) against ``num_negatives`` items
  drawn by ``app.data.sampling`` (uniform or popularity ** 0.75, never a positive of u), the user
  pooled from their history minus i (and minus dropped entries when ``history_dropout`` > 0);
* ``softmax``: the same examples with a sampled softmax and the log-frequency (logQ) correction, so
  popular items are not over-penalised for being sampled more often; ``num_negatives=0`` makes it an
  exact softmax over the catalogue.

TensorFlow is imported lazily (``_keras()``) so the NumPy-only engines and the service do not pay
for it; the trained weights live in the layers of a functional Keras model (``keras_model``) that
``app.model.artifacts`` saves as ``model.keras``.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.model.base import ItemFeatures

POOLINGS = ("mean", "sqrt", "none")
LOSSES = ("bce", "softmax", "multinomial")
SAMPLINGS = ("uniform", "popularity")
SCHEDULES = ("constant", "cosine")
#: Training keeps a dense copy of the users x items matrix up to this many cells (128 MB as float32).
DENSE_ROWS_LIMIT = 2**25

#: The defaults of ``EmbeddingRecommender`` and of the training CLI (chosen on ML-100K validation
#: splits; see ``app.model.train`` and the README for the search and the figures).
DEFAULT_PARAMS: dict[str, Any] = {
    "embedding_dim": 64,
    "epochs": 40,
    "batch_size": 1024,
    "learning_rate": 0.02,
    "num_negatives": 4,
    "negative_sampling": "popularity",
    "loss": "multinomial",
    "l2": 1e-2,
    "history_pooling": "mean",
    "user_embedding": False,
    "history_dropout": 0.5,
    "future_share": 0.75,
    "future_window": 0.2,
    "lr_schedule": "cosine",
    "ensemble": 5,
    "seed": 42,
}


def _keras():
    """Import Keras on the TensorFlow backend, with thread pools sized for a small shared machine."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        threads = int(os.environ.get("RECOMMENDER_TF_THREADS", "0")) or min(4, os.cpu_count() or 1)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised by the caller: keep its settings
        pass
    import keras

    return keras, tf


def binary_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Pattern of positive entries as float32 ones (weights do not change the pooled history)."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.data = (m.data > 0).astype(np.float32)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def pool_norm(counts: np.ndarray, pooling: str) -> np.ndarray:
    """Divisor of a history sum with ``counts`` items (1 for empty histories, so they pool to 0)."""
    c = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if pooling == "mean":
        return c
    if pooling == "sqrt":
        return np.sqrt(c)
    if pooling == "none":
        return np.ones_like(c)
    raise ValueError(f"history_pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def pooled_rows(history: sp.spmatrix, pooling: str) -> sp.csr_matrix:
    """Binary history rows divided by the pooling norm: ``pooled_rows(h) @ history_factors`` is the history part."""
    b = binary_csr(history)
    norm = pool_norm(np.diff(b.indptr), pooling)
    return sp.csr_matrix(sp.diags((1.0 / norm).astype(np.float32)) @ b, dtype=np.float32)


def user_vectors(
    users: np.ndarray,
    history: sp.spmatrix,
    user_factors: np.ndarray,
    history_factors: np.ndarray,
    pooling: str,
) -> np.ndarray:
    """User vectors (n x d): own embedding (0 for index -1) plus the pooled history embeddings."""
    users = np.asarray(users, dtype=np.int64).reshape(-1)
    d = history_factors.shape[1]
    out = np.zeros((users.size, d), dtype=np.float32)
    known = (users >= 0) & (users < user_factors.shape[0])
    out[known] = user_factors[users[known]]
    if history is not None and history.shape[0]:
        if history.shape[0] != users.size:
            raise ValueError(f"history has {history.shape[0]} rows for {users.size} users")
        if history.shape[1] != history_factors.shape[0]:
            raise ValueError(f"history has {history.shape[1]} columns, the model has {history_factors.shape[0]} items")
        out += np.asarray(pooled_rows(history, pooling) @ history_factors, dtype=np.float32)
    return out


def dot_scores(vectors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray) -> np.ndarray:
    """Scores of every item for each user vector: ``vectors @ item_factors.T + item_bias`` (float32)."""
    return (np.asarray(vectors, np.float32) @ item_factors.T + item_bias[None, :]).astype(np.float32, copy=False)


def _check_params(p: dict[str, Any]) -> None:
    if p["embedding_dim"] < 1:
        raise ValueError("embedding_dim must be >= 1")
    if p["epochs"] < 1:
        raise ValueError("epochs must be >= 1")
    if p["batch_size"] < 1:
        raise ValueError("batch_size must be >= 1")
    if not p["learning_rate"] > 0:
        raise ValueError("learning_rate must be > 0")
    if p["num_negatives"] < 0 or (p["num_negatives"] == 0 and p["loss"] == "bce"):
        raise ValueError("num_negatives must be >= 1 (0 is allowed only with loss='softmax': the full catalogue)")
    if p["negative_sampling"] not in SAMPLINGS:
        raise ValueError(f"negative_sampling must be one of {', '.join(SAMPLINGS)}, got {p['negative_sampling']!r}")
    if p["loss"] not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {p['loss']!r}")
    if p["loss"] == "multinomial" and p["history_dropout"] <= 0:
        raise ValueError("loss='multinomial' needs history_dropout > 0 (the dropped items are the targets)")
    if p["l2"] < 0:
        raise ValueError("l2 must be >= 0")
    if p["ensemble"] < 1:
        raise ValueError("ensemble must be >= 1")
    if p["lr_schedule"] not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {p['lr_schedule']!r}")
    if not 0.0 <= p["future_share"] <= 1.0:
        raise ValueError("future_share must be in [0, 1]")
    if not 0.0 < p["future_window"] <= 1.0:
        raise ValueError("future_window must be in (0, 1]")
    if not 0.0 <= p["history_dropout"] < 1.0:
        raise ValueError("history_dropout must be in [0, 1)")
    if p["history_pooling"] not in POOLINGS:
        raise ValueError(f"history_pooling must be one of {', '.join(POOLINGS)}, got {p['history_pooling']!r}")


class EmbeddingRecommender:
    """Keras embedding model behind the ``Recommender`` contract (see the module docstring)."""

    name: ClassVar[str] = "nn"
    uses_recency: ClassVar[bool] = True  # fit() takes ``recency`` (Dataset.recency) for ``future_share``

    def __init__(
        self,
        embedding_dim: int = DEFAULT_PARAMS["embedding_dim"],
        epochs: int = DEFAULT_PARAMS["epochs"],
        batch_size: int = DEFAULT_PARAMS["batch_size"],
        learning_rate: float = DEFAULT_PARAMS["learning_rate"],
        num_negatives: int = DEFAULT_PARAMS["num_negatives"],
        negative_sampling: str = DEFAULT_PARAMS["negative_sampling"],
        loss: str = DEFAULT_PARAMS["loss"],
        l2: float = DEFAULT_PARAMS["l2"],
        history_pooling: str = DEFAULT_PARAMS["history_pooling"],
        user_embedding: bool = DEFAULT_PARAMS["user_embedding"],
        history_dropout: float = DEFAULT_PARAMS["history_dropout"],
        future_share: float = DEFAULT_PARAMS["future_share"],
        future_window: float = DEFAULT_PARAMS["future_window"],
        lr_schedule: str = DEFAULT_PARAMS["lr_schedule"],
        ensemble: int = DEFAULT_PARAMS["ensemble"],
        seed: int = DEFAULT_PARAMS["seed"],
        verbose: bool = False,
    ):
        self.hyperparameters: dict[str, Any] = {
            "embedding_dim": int(embedding_dim),
            "epochs": int(epochs),
            "batch_size": int(batch_size),
            "learning_rate": float(learning_rate),
            "num_negatives": int(num_negatives),
            "negative_sampling": str(negative_sampling),
            "loss": str(loss),
            "l2": float(l2),
            "history_pooling": str(history_pooling),
            "user_embedding": bool(user_embedding),
            "history_dropout": float(history_dropout),
            "future_share": float(future_share),
            "future_window": float(future_window),
            "lr_schedule": str(lr_schedule),
            "ensemble": int(ensemble),
            "seed": int(seed),
        }
        _check_params(self.hyperparameters)
        self.verbose = verbose
        self.keras_model: Any = None
        self.history_: list[dict[str, float]] = []  # per-epoch loss and seconds
        self.user_factors: np.ndarray | None = None
        self.history_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.item_bias: np.ndarray | None = None
        self._log_q = np.zeros(0, np.float32)

    def params(self) -> dict[str, Any]:
        return dict(self.hyperparameters)

    # ------------------------------------------------------------------ training
    def fit(
        self,
        matrix: sp.csr_matrix,
        features: ItemFeatures | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        recency: sp.csr_matrix | None = None,
    ) -> "EmbeddingRecommender":
        """Train on the positives of ``matrix`` (users x items); ``on_epoch(epoch, logs)`` reports progress.

        With ``ensemble`` = K > 1, K members are trained with seeds ``seed``, ``seed + 1000``, ... and
        stored side by side as one model of dimension K * ``embedding_dim`` whose item factors are
        divided by K: its score is exactly the mean of the members' scores (less variance, same
        NumPy serving).
        """
        keras, _ = _keras()
        p = self.hyperparameters
        x = binary_csr(matrix)
        n_users, n_items = x.shape
        if x.nnz == 0:
            raise ValueError("cannot train on a matrix without positives")
        k = p["ensemble"]
        self.history_ = []
        members = []
        for member in range(k):
            seed = p["seed"] + 1000 * member  # disjoint from the members of nearby seeds
            report = on_epoch
            if on_epoch is not None and k > 1:
                report = lambda e, logs, m=member: on_epoch(m * p["epochs"] + e, {**logs, "member": m + 1})
            self.keras_model = build_keras_model(n_users, n_items, p["embedding_dim"], p["user_embedding"], seed=seed)
            self._fit_member(x, seed, report, recency)
            self._pull_arrays()
            members.append((self.user_factors, self.history_factors, self.item_factors, self.item_bias))
        if k > 1:
            model = build_keras_model(n_users, n_items, k * p["embedding_dim"], p["user_embedding"], seed=p["seed"])
            model.get_layer("user_factors").embeddings.assign(np.concatenate([m[0] for m in members], axis=1))
            model.get_layer("history_factors").kernel.assign(np.concatenate([m[1] for m in members], axis=1))
            model.get_layer("item_scores").item_factors.assign(np.concatenate([m[2] for m in members], axis=1) / k)
            model.get_layer("item_scores").item_bias.assign(np.mean([m[3] for m in members], axis=0))
            self.keras_model = model
            self._pull_arrays()
        return self

    def _fit_member(self, x: sp.csr_matrix, seed: int, on_epoch, recency: sp.csr_matrix | None = None) -> None:
        """Train the layers of ``self.keras_model`` (one member) on binary ``x``."""
        keras, tf = _keras()
        p = self.hyperparameters
        n_users, n_items = x.shape
        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        model = self.keras_model
        user_layer = model.get_layer("user_factors")
        hist_layer = model.get_layer("history_factors")
        item_layer = model.get_layer("item_scores")
        user_w, hist_w = user_layer.embeddings, hist_layer.kernel
        item_w, bias_w = item_layer.item_factors, item_layer.item_bias
        train_vars = [hist_w, item_w, bias_w] + ([user_w] if p["user_embedding"] else [])
        lr: Any = p["learning_rate"]
        if p["lr_schedule"] == "cosine":  # decays to 0 over the run: the last epochs average out the noise
            if p["loss"] == "multinomial":
                active = int(np.count_nonzero(np.diff(x.indptr)))
                per_batch = max(1, int(round(p["batch_size"] * n_users / x.nnz)))
                steps = -(-active // per_batch)
            else:
                steps = -(-x.nnz // p["batch_size"])
            lr = keras.optimizers.schedules.CosineDecay(p["learning_rate"], decay_steps=max(1, steps * p["epochs"]))
        optimizer = keras.optimizers.Adam(learning_rate=lr)
        optimizer.build(train_vars)

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
            from app.data.sampling import POPULARITY_POWER, NegativeSampler

            sampler = NegativeSampler(x, k, p["negative_sampling"], seed=seed)
            if p["negative_sampling"] == "popularity":
                w = np.bincount(cols, minlength=n_items).astype(np.float64) ** POPULARITY_POWER
                q = w / w.sum() if w.sum() > 0 else np.full(n_items, 1.0 / n_items)
            else:
                q = np.full(n_items, 1.0 / n_items)
            log_q = np.log(np.maximum(q * k, 1e-12)).astype(np.float32)
        self._log_q = log_q
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

        @tf.function(input_signature=spec, reduce_retracing=True)
        def step(sp_hist, inv, users, items, target_w, norm, cands):
            with tf.GradientTape() as tape:
                vec, reg = user_part(sp_hist, inv, users, items, target_w, norm)
                if full_softmax:
                    logits = tf.matmul(vec, item_w, transpose_b=True) + bias_w[None, :]
                    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(items, logits))
                    reg += tf.reduce_sum(tf.square(tf.gather(item_w, items)))
                else:
                    emb = tf.gather(item_w, cands)  # B x (1+k) x d
                    logits = tf.einsum("bd,bkd->bk", vec, emb) + tf.gather(bias_w, cands)
                    if bce:
                        labels = tf.concat([tf.ones_like(logits[:, :1]), tf.zeros_like(logits[:, 1:])], axis=1)
                        per = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
                        loss = tf.reduce_mean(tf.reduce_sum(per, axis=1))
                    else:
                        logits = logits - tf.gather(log_q_t, cands)
                        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros_like(items), logits))
                    reg += tf.reduce_sum(tf.square(emb))
                batch = tf.cast(tf.shape(items)[0], tf.float32)
                total = loss + l2 * reg / batch
            grads = tape.gradient(total, train_vars)
            optimizer.apply_gradients(zip(grads, train_vars))
            return loss

        n = cols.size
        bs = p["batch_size"]

        def positive_batches():
            """Per positive: the user pooled from the rest of their history, the item against sampled negatives."""
            order = rng.permutation(n)
            for start in range(0, n, bs):
                sel = order[start : start + bs]
                users, items = rows[sel], cols[sel]
                uniq, inv = np.unique(users, return_inverse=True)
                inv = inv.astype(np.int32).reshape(-1)
                sp_hist, target_w, norm = self._batch_context(x[uniq], inv, items, dropout, rng)
                if sampler is not None:
                    cands = np.concatenate([items[:, None], sampler.sample(users)], axis=1).astype(np.int32)
                else:
                    cands = items[:, None]
                yield step(sp_hist, inv, users, items, target_w, norm, cands)

        # Rows of a small matrix are taken from a dense copy: slicing the CSR cost ~15% of a fit.
        small = n_users * n_items <= DENSE_ROWS_LIMIT
        x_dense = x.toarray() if small else None
        place_dense = recency.toarray() if small and future > 0 else None

        def rows_of(users: np.ndarray, dense: np.ndarray | None, matrix: sp.csr_matrix) -> np.ndarray:
            return dense[users] if dense is not None else matrix[users].toarray()

        def user_batches():
            """Per batch of users: predict the items dropped from each history from the kept ones."""
            active = rng.permutation(np.flatnonzero(np.diff(x.indptr) > 0)).astype(np.int32)
            per_batch = max(1, int(round(bs * n_users / n)))  # about ``batch_size`` positives per batch
            for start in range(0, active.size, per_batch):
                users = active[start : start + per_batch]
                dense = rows_of(users, x_dense, x)
                kept = dense * (rng.random(dense.shape) >= dropout)
                if future > 0:  # some users: the items after a random point of their history are the targets
                    place = rows_of(users, place_dense, recency)
                    cut = rng.uniform(1.0 - p["future_window"], 1.0, size=(users.size, 1))
                    earlier = dense * (place <= cut)
                    pick = (rng.random(users.size) < future) & (earlier.sum(axis=1) < dense.sum(axis=1))
                    kept[pick] = earlier[pick]
                norm = pool_norm(kept.sum(axis=1), p["history_pooling"]).astype(np.float32)
                yield mstep(kept / norm[:, None], dense - kept, users)

        if p["loss"] == "multinomial":
            mstep = self._multinomial_step(tf, n_users, n_items, hist_w, user_w, item_w, bias_w, train_vars, optimizer)
            batches_of = user_batches
        else:
            batches_of = positive_batches
        for epoch in range(1, p["epochs"] + 1):
            t0 = time.perf_counter()
            losses = [float(loss) for loss in batches_of()]
            total_loss, batches = sum(losses), len(losses)
            logs = {"loss": total_loss / max(1, batches), "seconds": time.perf_counter() - t0}
            self.history_.append(logs)
            if on_epoch is not None:
                on_epoch(epoch, logs)
            elif self.verbose:
                print(f"epoch {epoch}/{p['epochs']}: loss {logs['loss']:.4f} ({logs['seconds']:.1f}s)", flush=True)

    def _multinomial_step(self, tf, n_users, n_items, hist_w, user_w, item_w, bias_w, train_vars, optimizer):
        """One step of the multinomial loss: softmax over every item the input does not hold."""
        p = self.hyperparameters
        l2, use_user = float(p["l2"]), p["user_embedding"]
        spec = [tf.TensorSpec([None, n_items], tf.float32), tf.TensorSpec([None, n_items], tf.float32),
                tf.TensorSpec([None], tf.int32)]

        # XLA fuses the logits, mask and softmax: 12% less time per fit on ML-100K (2 cores)
        @tf.function(input_signature=spec, reduce_retracing=True, jit_compile=True)
        def mstep(inputs, targets, users):
            with tf.GradientTape() as tape:
                vec = tf.matmul(inputs, hist_w)
                reg = tf.reduce_sum(tf.square(vec))
                if use_user:
                    own = tf.gather(user_w, users)
                    reg += tf.reduce_sum(tf.square(own))
                    vec = vec + own
                logits = tf.matmul(vec, item_w, transpose_b=True) + bias_w[None, :]
                logits = tf.where(inputs > 0, tf.constant(-1e9, logits.dtype), logits)  # the input's items do not compete
                logp = tf.nn.log_softmax(logits)
                loss = -tf.reduce_sum(targets * logp) / tf.maximum(tf.reduce_sum(targets), 1.0)
                batch = tf.cast(tf.shape(users)[0], tf.float32)
                total = loss + l2 * (reg / batch + tf.reduce_sum(tf.square(item_w)) / n_users)
            grads = tape.gradient(total, train_vars)
            optimizer.apply_gradients(zip(grads, train_vars))
            return loss

        return mstep

    def _batch_context(self, rows: sp.csr_matrix, inv: np.ndarray, items: np.ndarray, dropout: float,
                       rng: np.random.Generator):
        """The batch's history rows (each entry kept with probability 1 - dropout) as a SparseTensor,
        whether each example's target is among them (it is subtracted: predict an item from the others),
        and the pooling norm of what remains."""
        import tensorflow as tf

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
        norm = pool_norm(context, self.hyperparameters["history_pooling"]).astype(np.float32)
        norm[context <= 0] = np.inf  # nothing else in the history: the pooled part is 0
        sp_hist = tf.SparseTensor(np.stack([r, c], axis=1), np.ones(r.size, np.float32), rows.shape)
        return sp_hist, target_in.astype(np.float32), norm

    def _pull_arrays(self) -> None:
        m = self.keras_model
        self.user_factors = np.asarray(m.get_layer("user_factors").embeddings.numpy(), dtype=np.float32)
        self.history_factors = np.asarray(m.get_layer("history_factors").kernel.numpy(), dtype=np.float32)
        self.item_factors = np.asarray(m.get_layer("item_scores").item_factors.numpy(), dtype=np.float32)
        self.item_bias = np.asarray(m.get_layer("item_scores").item_bias.numpy(), dtype=np.float32)

    def heldout_loss(self, users: np.ndarray, items: np.ndarray, history: sp.spmatrix, known: sp.spmatrix) -> float:
        """The training loss on held-out pairs (users[k], items[k]), users built from ``history`` rows.

        Negatives are drawn as in training from items that are not positives in ``known`` (all data,
        so a held-out positive is never a negative), with a fixed seed so the figure repeats.
        """
        p = self.hyperparameters
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.size == 0:
            return float("nan")
        rows = sp.csr_matrix(history)[users]
        vec = self.user_vectors(users, rows)
        if p["loss"] == "multinomial" or (p["loss"] == "softmax" and p["num_negatives"] == 0):
            logits = dot_scores(vec, self.item_factors, self.item_bias).astype(np.float64)
            if p["loss"] == "multinomial":  # as in training: the history's items do not compete
                target = logits[np.arange(users.size), items].copy()
                coo = binary_csr(rows).tocoo()
                logits[coo.row, coo.col] = -np.inf
                logits[np.arange(users.size), items] = target
            top = logits.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            return float(np.mean(lse - logits[np.arange(users.size), items]))
        from app.data.sampling import NegativeSampler

        sampler = NegativeSampler(binary_csr(known), p["num_negatives"], p["negative_sampling"], seed=p["seed"])
        cands = np.concatenate([items[:, None], sampler.sample(users).astype(np.int64)], axis=1)
        logits = np.einsum("bd,bkd->bk", vec, self.item_factors[cands]).astype(np.float64) + self.item_bias[cands]
        if p["loss"] == "bce":
            per = np.logaddexp(0.0, logits)  # -log(1 - sigmoid) for the negatives
            per[:, 0] = np.logaddexp(0.0, -logits[:, 0])  # -log(sigmoid) for the positive
            return float(np.mean(per.sum(axis=1)))
        logits = logits - self._log_q[cands]
        top = logits.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return float(np.mean(lse - logits[:, 0]))

    # ------------------------------------------------------------------ scoring (NumPy)
    def user_vectors(self, users: np.ndarray, history: sp.spmatrix) -> np.ndarray:
        if self.item_factors is None:
            raise RuntimeError("fit the recommender before scoring")
        return user_vectors(users, history, self.user_factors, self.history_factors, self.hyperparameters["history_pooling"])

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return dot_scores(self.user_vectors(users, history), self.item_factors, self.item_bias)


def build_keras_model(n_users: int, n_items: int, dim: int, user_embedding: bool, seed: int = 0):
    """Functional model: inputs ``user`` (index) and ``history`` (pooled binary row) -> scores of every item."""
    keras, _ = _keras()
    _register(keras)
    init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
    user = keras.Input(shape=(), dtype="int32", name="user")
    history = keras.Input(shape=(n_items,), dtype="float32", name="history")
    own = keras.layers.Embedding(
        max(1, n_users), dim, name="user_factors",
        embeddings_initializer=init if user_embedding else "zeros", trainable=user_embedding,
    )(user)
    pooled = keras.layers.Dense(dim, use_bias=False, name="history_factors",
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed + 1))(history)
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
                shape=(self.n_items, self.dim), name="item_factors",
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
