"""The Keras embedding recommender ("nn"): its hyperparameters, training, and held-out loss.

It scores with ``app.model.embedding_scoring`` (a user is the pooled embeddings of their items: a
user with new events or a few seed items is scored without retraining).

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

This module is NumPy only: TensorFlow is imported by ``app.model.embedding_training`` when a model
is trained, so the other engines and the service do not pay for it. The trained weights live in the
layers of a functional Keras model (``keras_model``) that ``app.model.artifacts`` saves as
``model.keras``; ``app.model.embedding_scoring.SavedEmbedding`` scores a saved model from its arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from app.data.features import ItemFeatures
from app.data.sampling import NegativeSampler
from app.model.embedding_scoring import POOLINGS, EmbeddingScorer, binary_csr, dot_scores

LOSSES = ("bce", "softmax", "multinomial")
SAMPLINGS = ("uniform", "popularity")
SCHEDULES = ("constant", "cosine")
LOSS_CHUNK = 2048  # held-out pairs scored at once by ``heldout_loss``

#: The defaults of ``EmbeddingRecommender`` and of the training CLI (chosen on ML-100K validation
#: splits; see ``app.registry.train`` and the README for the search and the figures).
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


#: The hyperparameters ``sized_params`` adapts to the data when they are not given.
SIZED = ("epochs", "ensemble", "batch_size")
#: An epoch of the default loss scores every item for every user, so its work grows with users x items
#: ("cells"). Up to ``BATCH_CELLS`` a batch holds ``batch_size`` positives; above, the batch doubles with
#: every doubling of the cells (up to ``MAX_BATCH``): the same work in fewer, wider matrix products
#: (at 138,000 x 27,000 on 2 cores an epoch took 60 s in batches of 1,024 positives, 35 s in 16,384).
BATCH_CELLS = 2**27
MAX_BATCH = 16384
#: Cells x member-epochs of a default fit (5 members x 40 epochs = 200 member-epochs up to 1.25e7 cells,
#: MovieLens 100K's 1.6M among them): above it, first members, then epochs are cut, so a default fit
#: grows with the data only slowly. On 138,000 x 27,000 cells one member of 4 epochs scored better
#: held-out NDCG@10 than of 2 or 10 (0.225, 0.223, 0.220), hence the floor of 4.
MEMBER_EPOCH_CELLS = 2.5e9
MIN_EPOCHS = 4
#: Cells x member-epochs per positive at most: an epoch scores every item for every user but learns from
#: the positives, so on a sparse log (few positives per user) the same cells teach less. On a
#: shop-shaped log (14,000 users x 5,500 items, 10 positives a user; 17,700 of them at the budget
#: above) the multi-stage engine scored the same with 12, 20 and 32 epochs (leave-last-out NDCG@10
#: 0.046, 3 seeds) and the embedding model alone 0.011, 0.011, 0.012; MovieLens 100K (4,900) and the
#: MovieLens-shaped logs (at most 6,900) are below it and keep their epochs.
MEMBER_EPOCH_CELLS_PER_POSITIVE = 8_000
#: Half that where under ``SPARSE_DENSITY`` of the cells are positive: the shop-shaped log above (0.18%)
#: gets 7 epochs instead of 14, at half the time, and its embedding model scored 0.0120 against 0.0108
#: leave-last-out NDCG@10, the multi-stage engine 0.0447 against 0.0454 (3 seeds, 2026-12-03). Denser
#: logs (MovieLens 100K: 3.5%, the MovieLens-shaped 1M-event log: 1.2%) keep theirs.
SPARSE_DENSITY = 0.01
SPARSE_CELLS_PER_POSITIVE = 4_000


def sized_params(
    n_users: int, n_items: int, given: dict[str, Any] | None = None, n_positives: int | None = None
) -> dict[str, Any]:
    """``DEFAULT_PARAMS`` sized to a ``n_users`` x ``n_items`` matrix of ``n_positives`` positives, with
    ``given`` laid over them.

    Only the hyperparameters in ``SIZED`` that ``given`` leaves out change, and only on large or sparse
    data: the batch widens above ``BATCH_CELLS`` cells, and the member-epochs (ensemble x epochs) shrink
    to fit ``MEMBER_EPOCH_CELLS`` and the budget per positive (members first: on data that
    large one well-trained member is worth more than several short ones), never below ``MIN_EPOCHS``
    epochs. MovieLens 100K and catalogues of a few thousand items keep the defaults."""
    given = dict(given or {})
    hp = {**DEFAULT_PARAMS, **given}
    cells = max(1, n_users * n_items)
    if "batch_size" not in given and cells > BATCH_CELLS:
        widen = 2 ** int(np.floor(np.log2(cells / BATCH_CELLS)))
        hp["batch_size"] = int(min(MAX_BATCH, DEFAULT_PARAMS["batch_size"] * widen))
    if n_positives is None:
        budget = MEMBER_EPOCH_CELLS
    else:
        sparse = n_positives < SPARSE_DENSITY * cells
        per_positive = SPARSE_CELLS_PER_POSITIVE if sparse else MEMBER_EPOCH_CELLS_PER_POSITIVE
        budget = min(MEMBER_EPOCH_CELLS, per_positive * n_positives)
    member_epochs = budget / cells
    if member_epochs < hp["ensemble"] * hp["epochs"]:
        if "ensemble" not in given:
            hp["ensemble"] = int(np.clip(member_epochs // DEFAULT_PARAMS["epochs"], 1, DEFAULT_PARAMS["ensemble"]))
        if "epochs" not in given:
            hp["epochs"] = int(np.clip(round(member_epochs / hp["ensemble"]), MIN_EPOCHS, DEFAULT_PARAMS["epochs"]))
    return hp


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


def _member_report(on_epoch: Callable[[int, dict[str, float]], None] | None, member: int, epochs: int):
    """Progress of one ensemble member as epochs of the whole run, with the member's number in the logs."""
    if on_epoch is None:
        return None
    return lambda e, logs: on_epoch(member * epochs + e, {**logs, "member": member + 1})


class EmbeddingRecommender(EmbeddingScorer):
    """Keras embedding model behind the ``Recommender`` contract (see the module docstring)."""

    uses_recency: ClassVar[bool] = True  # fit() takes ``recency`` (Dataset.recency) for ``future_share``

    @staticmethod
    def sized(n_users: int, n_items: int, params: dict[str, Any], n_positives: int | None = None) -> dict[str, Any]:
        """``params`` with the missing hyperparameters sized to the data (``sized_params``), as the
        training CLI does; ``app.eval`` asks any engine that has this method."""
        return sized_params(n_users, n_items, params, n_positives)

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
        self.pooling = self.hyperparameters["history_pooling"]
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
    ) -> EmbeddingRecommender:
        """Train on the positives of ``matrix`` (users x items); ``on_epoch(epoch, logs)`` reports progress.

        With ``ensemble`` = K > 1, K members are trained with seeds ``seed``, ``seed + 1000``, ... and
        stored side by side as one model of dimension K * ``embedding_dim`` whose item factors are
        divided by K: its score is exactly the mean of the members' scores (less variance, same
        NumPy serving).
        """
        from app.model.embedding_training import build_keras_model, fit_member  # TensorFlow, only when training

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
            report = on_epoch if k == 1 else _member_report(on_epoch, member, p["epochs"])
            self.keras_model = build_keras_model(n_users, n_items, p["embedding_dim"], p["user_embedding"], seed=seed)
            fit_member(self, x, seed, report, recency)
            self.pull_arrays()
            members.append((self.user_factors, self.history_factors, self.item_factors, self.item_bias))
        if k > 1:
            model = build_keras_model(n_users, n_items, k * p["embedding_dim"], p["user_embedding"], seed=p["seed"])
            model.get_layer("user_factors").embeddings.assign(np.concatenate([m[0] for m in members], axis=1))
            model.get_layer("history_factors").kernel.assign(np.concatenate([m[1] for m in members], axis=1))
            model.get_layer("item_scores").item_factors.assign(np.concatenate([m[2] for m in members], axis=1) / k)
            model.get_layer("item_scores").item_bias.assign(np.mean([m[3] for m in members], axis=0))
            self.keras_model = model
            self.pull_arrays()
        return self

    def pull_arrays(self) -> None:
        """Copy the Keras layers' weights into the NumPy arrays that score (also mid-training, to evaluate)."""
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
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.size == 0:
            return float("nan")
        p = self.hyperparameters
        history = sp.csr_matrix(history)
        full = p["loss"] == "multinomial" or (p["loss"] == "softmax" and p["num_negatives"] == 0)
        sampler = (
            None
            if full
            else NegativeSampler(binary_csr(known), p["num_negatives"], p["negative_sampling"], seed=p["seed"])
        )
        # In chunks: a full-softmax row per pair is n_items float64s (138,000 pairs x 27,000 items: 30 GB at once)
        total = 0.0
        for start in range(0, users.size, LOSS_CHUNK):
            part = slice(start, start + LOSS_CHUNK)
            total += self._pair_losses(users[part], items[part], history, sampler).sum()
        return float(total / users.size)

    def _pair_losses(
        self, users: np.ndarray, items: np.ndarray, history: sp.csr_matrix, sampler: NegativeSampler | None
    ) -> np.ndarray:
        """Each pair's loss; ``sampler`` draws the negatives of the sampled losses (None: full softmax)."""
        p = self.hyperparameters
        rows = history[users]
        vec = self.user_vectors(users, rows)
        if sampler is None:
            # float32 in place (a float64 copy of every chunk cost as much as the rest); the sums in float64
            logits = dot_scores(vec, self.item_factors, self.item_bias)
            target = logits[np.arange(users.size), items].astype(np.float64)
            if p["loss"] == "multinomial":  # as in training: the history's items do not compete
                coo = binary_csr(rows).tocoo()
                logits[coo.row, coo.col] = -np.inf
                logits[np.arange(users.size), items] = target
            top = logits.max(axis=1, keepdims=True)
            np.exp(np.subtract(logits, top, out=logits), out=logits)
            lse = top[:, 0].astype(np.float64) + np.log(logits.sum(axis=1, dtype=np.float64))
            return lse - target
        cands = np.concatenate([items[:, None], sampler.sample(users).astype(np.int64)], axis=1)
        logits = np.einsum("bd,bkd->bk", vec, self.item_factors[cands]).astype(np.float64) + self.item_bias[cands]
        if p["loss"] == "bce":
            per = np.logaddexp(0.0, logits)  # -log(1 - sigmoid) for the negatives
            per[:, 0] = np.logaddexp(0.0, -logits[:, 0])  # -log(sigmoid) for the positive
            return per.sum(axis=1)
        logits = logits - self._log_q[cands]
        top = logits.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        return lse - logits[:, 0]
