"""Train the Keras embedding model on a JSONL log and write a model directory (the training CLI).

    python -m app.registry.train --data-path backend/data/interactions.jsonl \\
        --items-path backend/data/items.jsonl --model-dir backend/models/latest

It sits in the registry package, above the model and evaluation packages, because it uses both: the
model to fit and the held-out check (``app.eval.holdout``) to report on it. ``python -m
app.model.train`` still runs it (the old name).

Steps: read and validate the log (bad lines skipped and reported, or ``--strict``), aggregate
positives, then

1. with ``--evaluation quick`` or ``full`` (or ``auto`` with ``--pipeline nn``), the evaluation fit,
   never shipped: each user's latest positive is held out (for a ``--holdout-fraction`` share of the
   users with at least 3 positives), a model is fitted on the rest with per-epoch progress (held-out
   NDCG@10 every 10 epochs), and the held-out loss, HitRate@10 and NDCG@10 are reported beside the
   most-popular baseline on the same slice. ``quick`` fits the same hyperparameters with one ensemble
   member, ``full`` the exact recipe, ``none`` skips it;
2. the shipped fit: the model is trained on *all* positives;
3. the multi-stage engine (``--pipeline hybrid``, the default; ``nn`` skips it): candidate sources
   (an embedding model of the shipped recipe, item-kNN, ALS, EASE on catalogues up to 6,000 items,
   popular, trending, genre neighbours) and a feature store fitted on each user's earlier positives,
   a LightGBM ranker trained on their latest tenth, then the sources refitted on everything (the
   model of step 2 is the embedding source; ``app.model.hybrid``). With ``--evaluation auto`` (the
   default) the held-out figures are the earlier-slice embedding model's on every user's latest tenth
   (at least one positive each, users with at least 3): a fit the engine needs anyway, so no model is
   trained only to be measured. The engine's NDCG@10 on the ranker's held-out users, beside each
   source's, is printed and saved; the service's ``auto`` serves it when it beat the embedding model there;
4. the model directory is written atomically (``app.model.artifacts``): the metadata's ``metrics`` are
   the held-out figures and say which model they describe (``describes``), ``data_summary.fit`` says what the shipped
   model was fitted on (all positives, their time range, the input hashes), and ``arrays.npz`` holds
   every positive as history and every item each user has seen (``--seen-events``) for exclusion.

Large data: an epoch of the default loss scores every item for every user, so it costs users x items.
``--epochs``, ``--ensemble`` and ``--batch-size`` left on ``auto`` keep their defaults (40, 5, 1024)
up to 12.5 million users x items (MovieLens 100K has 1.6 million); above, members and then epochs
are cut to fit a fixed amount of work (never below 4 epochs), also when the log is sparse (at most
8,000 users x items x member-epochs per positive, 4,000 under 1% of the cells positive: a shop's 10
positives a user get 7 epochs) and,
above 134 million, batches widen (up to 16,384 positives), which the first progress line says. Wall
time of this command with the defaults on a 2-core machine: MovieLens 100K 35 to 60 s (20 to 30 s
with ``--pipeline nn``); a shop's log of 14,000 users x 5,500 items (140,000 positives) 45 to 65 s
(25 to 35 s with ``--pipeline nn``); a MovieLens-20M-sized log (20 million events, 138,000 users x
27,000 items) 6 to 15 minutes (5 GB peak; 5 to 6 minutes and 3.8 GB with ``--pipeline nn``): two fits
of 4 epochs each, the sources twice and the ranker.

Several workers (``--distribute multiworker``): every worker runs this same command on the same data,
each with its own ``TF_CONFIG`` (the cluster and its place in it); every embedding fit trains in
lockstep on all of them, and only the chief writes the model directory
and prints the progress. ``scripts/train_multiworker.sh`` starts local workers.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from app.data.aggregate import parse_weights
from app.data.catalog import read_items
from app.data.dataset import load_dataset
from app.data.events import IngestError, list_log_files
from app.data.features import ItemFeatures, average_ratings, item_features, last_seen, seen_matrix
from app.data.types import Dataset, EventLog
from app.eval.holdout import heldout_metrics, holdout_split
from app.eval.metrics import ndcg_at_k, recall_at_k
from app.files import sha256_file, sha256_files
from app.model import distribution
from app.model.artifacts import history_arrays, new_version, save_arrays_bundle, seen_arrays
from app.model.embedding import (
    DEFAULT_PARAMS,
    LOSSES,
    POOLINGS,
    SAMPLINGS,
    SCHEDULES,
    SIZED,
    EmbeddingRecommender,
    sized_params,
)
from app.model.hybrid import HybridRecommender
from app.model.popularity import PopularityRecommender

HELDOUT_EVERY = 10  # epochs between held-out evaluations in the progress lines (and always at the end)
EVALUATIONS = ("auto", "quick", "full", "none")
PIPELINES = ("hybrid", "nn")
#: ``--evaluation auto`` with the multi-stage engine: its earlier-slice model is measured, no extra fit.
EARLIER_SLICE = "earlier slice"
#: Held-out pairs the loss is averaged over at most (a full-softmax row each; the metrics use every user).
LOSS_PAIRS = 200_000
SHIPPED_FIT = "all positives"


def describe_evaluation(evaluation: str, n_held: int, hp: Mapping[str, Any]) -> str:
    """What the held-out figures describe, in the words the CLI prints and the metadata keeps."""
    if evaluation == "none" or not n_held:
        return "no evaluation fit; the shipped model is trained on all positives"
    if evaluation == EARLIER_SLICE:
        return (
            f"the multi-stage engine's earlier-slice embedding model (the shipped recipe), trained without {n_held} "
            "users' latest tenth of positives (at least one each) and scored on them (full ranking, training items "
            "excluded); the shipped model is trained on all positives"
        )
    recipe = (
        f"the same hyperparameters with one ensemble member (of {hp['ensemble']})"
        if evaluation == "quick" and hp["ensemble"] > 1
        else "the exact recipe of the shipped model"
    )
    return (
        f"evaluation fit ({evaluation}): {recipe}, trained without {n_held} users' latest positive and scored on "
        "it (full ranking, training items excluded); the shipped model is trained on all positives"
    )


def _duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _progress(
    say: Callable[[str], None], hp: Mapping[str, Any], label: str, check: Callable[[], str] | None
) -> Callable[[int, dict[str, float]], None]:
    epochs, total = hp["epochs"], hp["ensemble"] * hp["epochs"]
    firsts: list[float] = []  # each member's first epoch, which includes compiling its step
    others: list[float] = []

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        (firsts if (epoch - 1) % epochs == 0 else others).append(logs["seconds"])
        member = f"member {int(logs['member'])}/{hp['ensemble']} " if "member" in logs else ""
        line = f"{label}{member}epoch {(epoch - 1) % epochs + 1:>3}/{epochs}: loss {logs['loss']:.4f}"
        line += f"  {logs['seconds']:.1f}s"
        if others and epoch < total:  # ``epoch`` counts the epochs of every member so far
            per = sum(others) / len(others)
            members_left = (total - epoch) // epochs
            left = per * (total - epoch) + members_left * max(0.0, sum(firsts) / len(firsts) - per)
            line += f"  ETA {_duration(left)}"
        if check is not None and (epoch % HELDOUT_EVERY == 0 or epoch == hp["epochs"]):
            line += check()  # scoring every epoch costs ~1/3 of the fit
        say(line)

    return on_epoch


def evaluation_fit(
    dataset: Dataset,
    hp: Mapping[str, Any],
    *,
    evaluation: str = "quick",
    holdout_fraction: float = 1.0,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """The held-out check, on a separate fit that is never shipped: each user's latest positive (for a
    ``holdout_fraction`` share of the users with >= 3 positives) held out, the model fitted on the rest
    (``quick``: one ensemble member; ``full``: the exact recipe), scored beside most-popular."""
    say = log or (lambda s: None)
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {', '.join(EVALUATIONS)}, not {evaluation!r}")
    evaluation = "quick" if evaluation == "auto" else evaluation  # without the multi-stage engine
    out: dict[str, Any] = {"evaluation": evaluation, "heldout_users": 0}
    if evaluation == "none" or holdout_fraction == 0.0:
        out["describes"] = describe_evaluation("none", 0, hp)
        return out
    train, held = holdout_split(dataset, holdout_fraction, hp["seed"])
    train_m = train.matrix()
    held_m = held.matrix().copy()
    held_m.data[:] = 1.0
    n_held = int(np.count_nonzero(np.diff(held_m.indptr)))
    out["heldout_users"] = n_held
    out["describes"] = describe_evaluation(evaluation, n_held, hp)
    if not n_held:
        return out
    ehp = {**hp, "ensemble": 1} if evaluation == "quick" else dict(hp)
    model = EmbeddingRecommender(**ehp)
    say(f"evaluation fit ({evaluation}, not shipped): {len(train)} positives, {n_held} users' latest positive held out")

    def check() -> str:
        model.pull_arrays()
        m = heldout_metrics(model.score, train_m, held_m)
        return f"  held-out HR@10 {m['hitrate@10']:.4f} NDCG@10 {m['ndcg@10']:.4f}"

    t0 = time.perf_counter()
    progress = _progress(say, ehp, "eval ", check if log is not None else None)  # nobody reads it: not scored
    model.fit(train_m, on_epoch=progress, recency=train.recency())
    out["evaluation_seconds"] = round(time.perf_counter() - t0, 2)
    out.update(heldout_figures(model, train_m, held_m, dataset.matrix(), hp["seed"]))
    say(_heldout_line(out, "evaluation fit"))
    return out


def heldout_figures(
    model: EmbeddingRecommender, train: sp.csr_matrix, held: sp.csr_matrix, known: sp.csr_matrix, seed: int
) -> dict[str, Any]:
    """HitRate/NDCG/Recall@10 of ``model`` (fitted on ``train``) on every held-out positive, beside most
    popular's, and its training loss on the held-out pairs (a seeded sample of ``LOSS_PAIRS`` at most)."""
    out: dict[str, Any] = heldout_metrics(model.score, train, held)
    pairs = held.tocoo()
    users, items = pairs.row, pairs.col
    if users.size > LOSS_PAIRS:
        pick = np.sort(np.random.default_rng(seed).choice(users.size, LOSS_PAIRS, replace=False))
        users, items = users[pick], items[pick]
    out["loss"] = model.heldout_loss(users, items, train, known)
    out["popular"] = heldout_metrics(PopularityRecommender().fit(train).score, train, held)
    return out


def _heldout_line(m: Mapping[str, Any], what: str) -> str:
    pop = m["popular"]
    return (
        f"held-out ({m['heldout_users']} users, {what}): loss {m['loss']:.4f}  HR@10 {m['hitrate@10']:.4f}  "
        f"NDCG@10 {m['ndcg@10']:.4f}  |  most popular: HR@10 {pop['hitrate@10']:.4f}  NDCG@10 {pop['ndcg@10']:.4f}"
    )


def earlier_slice_evaluation(
    nn: EmbeddingRecommender,
    earlier: sp.csr_matrix,
    later: sp.csr_matrix,
    known: sp.csr_matrix,
    *,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """The held-out figures of the multi-stage engine's earlier-slice embedding model (``--evaluation
    auto``): fitted with the shipped recipe on each user's earlier positives, scored on the later ones."""
    held = later.copy()
    held.data[:] = 1.0
    n_held = int(np.count_nonzero(np.diff(held.indptr)))
    out: dict[str, Any] = {"evaluation": EARLIER_SLICE, "heldout_users": n_held}
    hp = nn.params()
    out["describes"] = describe_evaluation(EARLIER_SLICE, n_held, hp)
    if n_held:
        out.update(heldout_figures(nn, earlier, held, known, hp["seed"]))
        if log is not None:
            log(_heldout_line(out, "the earlier-slice model"))
    return out


def train_model(
    dataset: Dataset,
    catalogue: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    evaluation: str = "quick",
    holdout_fraction: float = 1.0,
    log: Callable[[str], None] | None = print,
) -> tuple[EmbeddingRecommender, dict[str, Any]]:
    """Fit the model on every positive of ``dataset`` (what is shipped) and, unless ``evaluation="none"``,
    report held-out figures from a separate evaluation fit (``evaluation_fit``): (model, metrics).

    ``params``: ``EmbeddingRecommender`` hyperparameters; the missing ones are the defaults sized to
    the data (``sized_params``: fewer epochs and members, wider batches on large data).
    ``catalogue`` is accepted for symmetry with the CLI (the model itself uses no item features).
    """
    say = log or (lambda s: None)
    hp = sized_params(dataset.n_users, dataset.n_items, params, len(dataset))
    if not 0.0 <= holdout_fraction <= 1.0:
        raise ValueError("holdout_fraction must be between 0 and 1")
    sized = [f"{k.replace('_', ' ')} {hp[k]}" for k in SIZED if hp[k] != DEFAULT_PARAMS[k] and k not in (params or {})]
    if sized:
        say(
            f"sized to {dataset.n_users:,} users x {dataset.n_items:,} items: {', '.join(sized)} "
            "(instead of the defaults for smaller data)"
        )
    metrics = evaluation_fit(dataset, hp, evaluation=evaluation, holdout_fraction=holdout_fraction, log=log)
    model = EmbeddingRecommender(**hp)
    say(f"training on all {len(dataset)} positives ({dataset.n_users} users, {dataset.n_items} items)")
    t0 = time.perf_counter()
    model.fit(dataset.matrix(), on_epoch=_progress(say, hp, "", None), recency=dataset.recency())
    metrics["train_seconds"] = round(time.perf_counter() - t0, 2)
    metrics["final_model"] = f"trained on {SHIPPED_FIT} ({len(dataset)})"
    return model, metrics


def hybrid_validation(validation: Mapping[str, Any]) -> dict[str, Any]:
    """NDCG@10 and Recall@10 of the hybrid engine and of each source alone on the users its ranker
    held out (``HybridRecommender.validation_``), and the engine ``auto`` serves: the hybrid when it
    beats the embedding model there."""
    truth = validation["truth"]
    scores = {
        name: {
            "ndcg@10": round(float(ndcg_at_k(r, truth, 10).mean()), 4),
            "recall@10": round(float(recall_at_k(r, truth, 10).mean()), 4),
        }
        for name, r in validation["ranked"].items()
    }
    better = scores["hybrid"]["ndcg@10"] > scores.get("nn", {"ndcg@10": -1.0})["ndcg@10"]
    return {"users": len(validation["users"]), "metrics": scores, "auto": "hybrid" if better else "nn"}


def train_hybrid(
    dataset: Dataset,
    features: ItemFeatures,
    hp: Mapping[str, Any],
    nn: EmbeddingRecommender | Callable[[], EmbeddingRecommender],
    *,
    log: Callable[[str], None] | None = print,
    evaluation: dict[str, Any] | None = None,
) -> tuple[HybridRecommender, dict[str, Any]]:
    """The multi-stage pipeline around the shipped embedding model ``nn`` (fitted on all of ``dataset``
    with the hyperparameters ``hp``, or a function that fits it: it then runs beside the engine's
    earlier-slice fit): sources and features on each user's earlier positives, the ranker on their
    later ones, then the sources refitted on everything (``HybridRecommender.fit``); (engine,
    validation summary).

    ``evaluation``: a dict filled with the earlier-slice embedding model's held-out figures
    (``earlier_slice_evaluation``, the CLI's ``--evaluation auto``) once it is fitted, so they are
    there even when the ranker then cannot be trained."""
    say = log or (lambda s: None)
    engine = HybridRecommender(seed=hp["seed"], nn={k: v for k, v in hp.items() if k != "seed"})
    known = dataset.matrix()
    on_earlier = None
    if evaluation is not None:

        def on_earlier(sources, earlier, later) -> None:
            evaluation.update(earlier_slice_evaluation(sources["nn"], earlier, later, known, log=log))

    t0 = time.perf_counter()
    engine.fit(
        known,
        features,
        timestamps=dataset.timestamps(),
        nn=nn,
        on_stage=lambda s: say(f"hybrid: {s}"),
        on_epoch=_progress(say, hp, "hybrid earlier slice ", None) if log is not None else None,
        on_earlier=on_earlier,
    )
    summary = {**hybrid_validation(engine.validation_), "train_seconds": round(time.perf_counter() - t0, 2)}
    m = summary["metrics"]
    say(
        f"hybrid: validation ({summary['users']} users' later positives) NDCG@10 {m['hybrid']['ndcg@10']:.4f} "
        f"vs the embedding model alone {m['nn']['ndcg@10']:.4f}; auto serves {summary['auto']}"
    )
    return engine, summary


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def model_arrays(
    model: EmbeddingRecommender, dataset: Dataset, events: EventLog, seen_events: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """The ``arrays.npz`` content: factors, the full positives as history, what each user has seen
    (any event of a type in ``seen_events``, None = every type: ``seen_indptr``/``seen_indices``), item statistics."""
    history = dataset.matrix()
    return {
        "user_factors": model.user_factors,
        "history_factors": model.history_factors,
        "item_factors": model.item_factors,
        "item_bias": model.item_bias,
        **history_arrays(history),
        **seen_arrays(seen_matrix(events, dataset, seen_events)),
        "item_popularity": np.bincount(dataset.item_idx, minlength=dataset.n_items).astype(np.float64),
        "item_avg_rating": average_ratings(events, dataset),
        "item_last_ts": last_seen(dataset),
    }


def fit_summary(fitted: Dataset, part: str, **extra: Any) -> dict[str, Any]:
    """``data_summary["fit"]``: what a model was fitted on (the registry's overlap check reads it).

    ``part``: ``"all"`` (every positive of the data) or ``"train"`` (a split's train part; ``extra``
    names the protocol). The time range is that of the positives actually fitted."""
    ts = fitted.ts
    return {
        "part": part,
        "positives": len(fitted),
        "users": int(np.unique(fitted.user_idx).size),
        "items": int(np.unique(fitted.item_idx).size),
        "ts_min": int(ts.min()) if ts.size else None,
        "ts_max": int(ts.max()) if ts.size else None,
        **extra,
    }


def files_sha256(files: list[Path]) -> dict[str, str]:
    """sha256 of each input file by path (the combined ``input_sha256`` says only whether all are the same)."""
    return {str(f): sha256_file(f) for f in files}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the module docstring's layout and shows every default."""


def _auto_int(text: str) -> int | str:
    """``auto`` (sized to the data by ``sized_params``) or a whole number."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULT_PARAMS
    p = argparse.ArgumentParser(
        prog="python -m app.registry.train", description=__doc__, formatter_class=_HelpFormatter
    )
    p.add_argument(
        "--data-path", required=True, type=Path, help="interaction log: JSONL file, .jsonl.gz, or a directory of them"
    )
    p.add_argument("--items-path", type=Path, help="item catalogue JSONL (copied into the model as items.jsonl)")
    p.add_argument("--model-dir", required=True, type=Path, help="output directory (replaced atomically if it exists)")
    p.add_argument("--embedding-dim", type=int, default=d["embedding_dim"])
    p.add_argument(
        "--epochs", type=_auto_int, default="auto", help=f"auto: {d['epochs']}, fewer on large data (see above)"
    )
    p.add_argument(
        "--batch-size",
        type=_auto_int,
        default="auto",
        help=f"positives per batch; auto: {d['batch_size']}, wider on large data (see above)",
    )
    p.add_argument("--learning-rate", type=float, default=d["learning_rate"])
    p.add_argument(
        "--num-negatives",
        type=int,
        default=d["num_negatives"],
        help="sampled negatives per positive for --loss bce/softmax (0 with softmax: the whole catalogue); "
        "not used by multinomial",
    )
    p.add_argument("--negative-sampling", choices=SAMPLINGS, default=d["negative_sampling"])
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default=d["loss"],
        help="multinomial: softmax over all items for dropped history items; bce: binary cross-entropy "
        "on sampled negatives; softmax: sampled softmax with logQ correction",
    )
    p.add_argument("--l2", type=float, default=d["l2"], help="L2 penalty on the embeddings used in each batch")
    p.add_argument("--history-pooling", choices=POOLINGS, default=d["history_pooling"])
    p.add_argument(
        "--user-embedding",
        action=argparse.BooleanOptionalAction,
        default=d["user_embedding"],
        help="add a per-user embedding to the pooled history",
    )
    p.add_argument(
        "--history-dropout",
        type=float,
        default=d["history_dropout"],
        help="share of each history left out of the input while training (its items are the targets)",
    )
    p.add_argument(
        "--future-share",
        type=float,
        default=d["future_share"],
        help="multinomial loss: share of users per batch trained to predict the later part of their "
        "history from the earlier part (0: random dropout only)",
    )
    p.add_argument(
        "--future-window",
        type=float,
        default=d["future_window"],
        help="with --future-share: the cut point is drawn from this newest share of each history",
    )
    p.add_argument("--lr-schedule", choices=SCHEDULES, default=d["lr_schedule"])
    p.add_argument(
        "--ensemble",
        type=_auto_int,
        default="auto",
        help="members trained with seeds seed, seed+1000, ...; stored as one model scoring their mean; "
        f"auto: {d['ensemble']}, fewer on large data (see above)",
    )
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument(
        "--pipeline",
        choices=PIPELINES,
        default="hybrid",
        help="hybrid: also build the multi-stage engine around the embedding model (candidate sources, "
        "feature store, LightGBM ranker), served as engine hybrid and by auto when it was better on "
        "validation; nn: the embedding model only (faster)",
    )
    p.add_argument(
        "--evaluation",
        choices=EVALUATIONS,
        default="auto",
        help="where the held-out figures come from (the shipped model is always trained on all positives): "
        "auto = with --pipeline hybrid, the engine's earlier-slice embedding model (the shipped recipe, "
        "scored on each user's latest tenth of positives; no extra fit), else as quick; quick = a separate "
        "fit, never shipped, of the same hyperparameters with one ensemble member, on all but each user's "
        "latest positive; full = that fit with the exact recipe; none = no evaluation",
    )
    p.add_argument(
        "--holdout-fraction",
        type=float,
        default=1.0,
        help="quick and full: share of users (with >= 3 positives) whose latest positive is held out",
    )
    p.add_argument(
        "--seen-events",
        default=None,
        help="comma-separated event types that mark an item as seen for a user (saved with the model, "
        "never recommended back); default: every event type",
    )
    p.add_argument("--event-weights", help="JSON object or path to a JSON file laid over the default event weights")
    p.add_argument("--rating-threshold", type=float, default=4.0, help="a rating event is a positive at or above this")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.add_argument("--rejects-path", type=Path, help="write rejected lines here (JSONL with file, line and reason)")
    p.add_argument("--version", help="version id (default: UTC time + random suffix)")
    p.add_argument(
        "--distribute",
        choices=distribution.MODES,
        default="none",
        help="none: train in this process; multiworker: train with the workers listed in the TF_CONFIG "
        "environment variable, each running this same command on the same data (only the chief writes "
        "--model-dir; see scripts/train_multiworker.sh)",
    )
    return p


def data_fingerprint(dataset: Dataset, params: Mapping[str, Any], args: argparse.Namespace) -> str:
    """What must be the same on every worker for their fits to run in lockstep: the positives and the
    settings that decide the sequence of fits (not where the files are, nor --model-dir)."""
    h = hashlib.sha256()
    for a in (dataset.user_idx, dataset.item_idx, dataset.weight, dataset.ts):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update("\n".join([*dataset.users.ids, *dataset.items.ids]).encode())
    settings = (sorted(params.items()), args.pipeline, args.evaluation, args.holdout_fraction, args.items_path is None)
    h.update(repr(settings).encode())
    return h.hexdigest()


def weights_fingerprint(model: EmbeddingRecommender) -> str:
    """sha256 of the trained model's arrays (the same on every worker of a distributed run)."""
    h = hashlib.sha256()
    for a in (model.user_factors, model.history_factors, model.item_factors, model.item_bias):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    params = {
        "embedding_dim": args.embedding_dim,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "num_negatives": args.num_negatives,
        "negative_sampling": args.negative_sampling,
        "loss": args.loss,
        "l2": args.l2,
        "history_pooling": args.history_pooling,
        "user_embedding": args.user_embedding,
        "history_dropout": args.history_dropout,
        "future_share": args.future_share,
        "future_window": args.future_window,
        "lr_schedule": args.lr_schedule,
        "ensemble": args.ensemble,
        "seed": args.seed,
    }
    params = {k: v for k, v in params.items() if v != "auto"}  # sized to the data by train_model
    started = time.perf_counter()
    try:
        # first: TensorFlow needs the strategy before any other of its operations
        dist = distribution.start(args.distribute)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        # NumPy's products on one thread: TensorFlow, LightGBM and implicit run pools of their own, and the
        # many small products of scoring batches ran slower on two (EASE's factorisation takes every core)
        with threadpool_limits(1, "blas"):
            return _run(args, params, dist, started)
    except Exception as e:  # a worker stopped or lost touch: say so rather than a TensorFlow traceback
        if dist is None or type(e).__module__.split(".")[0] != "tensorflow":
            raise
        print(f"error: distributed training stopped on worker {dist.rank} ({type(e).__name__}): {e}", file=sys.stderr)
        return 1
    finally:
        distribution.stop()


def _run(
    args: argparse.Namespace, params: dict[str, Any], dist: distribution.Distribution | None, started: float
) -> int:
    """The CLI after its flags are parsed (``dist``: the strategy, None in a single process)."""
    chief = dist is None or dist.is_chief
    # Only the chief talks and writes; the other workers train in step with it and keep quiet.
    out_print = print if chief else (lambda *a, **k: None)
    try:
        EmbeddingRecommender(**params)  # validate hyperparameters before reading any data
        if not 0.0 <= args.holdout_fraction <= 1.0:
            raise ValueError("--holdout-fraction must be between 0 and 1")
        weights = parse_weights(args.event_weights)
        seen_events = (
            sorted({e.strip() for e in args.seen_events.split(",") if e.strip()}) if args.seen_events else None
        )
        files = list_log_files(args.data_path)
        dataset, events, summary = load_dataset(
            args.data_path,
            weights=weights,
            rating_threshold=args.rating_threshold,
            strict=args.strict,
            rejects_path=args.rejects_path if chief else None,
        )
        out_print(f"read {summary.describe()}", flush=True)
        if len(dataset) == 0:
            raise ValueError(f"{args.data_path}: no positives (check --event-weights and --rating-threshold)")
        catalogue = read_items(args.items_path, strict=args.strict) if args.items_path else {}
        if dist is not None:
            dist.agree("data or settings", data_fingerprint(dataset, params, args))
            out_print(
                f"distributed: {dist.workers} workers ({distribution.STRATEGY_NAME}); each trains on 1/{dist.workers} "
                "of every batch",
                flush=True,
            )
        say = (lambda s: print(s, flush=True)) if chief else None
        # auto with the multi-stage engine: its earlier-slice model is the one measured (no extra fit)
        from_hybrid = args.evaluation == "auto" and args.pipeline == "hybrid"
        shipped: list[tuple[EmbeddingRecommender, dict[str, Any]]] = []  # the shipped fit, however the engine ends

        def fit_shipped() -> EmbeddingRecommender:
            evaluation = "none" if from_hybrid else args.evaluation
            shipped.append(
                train_model(
                    dataset, catalogue, params, evaluation=evaluation, holdout_fraction=args.holdout_fraction, log=say
                )
            )
            return shipped[0][0]

        hybrid, hybrid_summary = None, None
        if args.pipeline == "hybrid":
            features = item_features(
                dataset.items.ids, catalogue, avg_rating=average_ratings(events, dataset), last_ts=last_seen(dataset)
            )
            evaluation: dict[str, Any] = {}
            hp = sized_params(dataset.n_users, dataset.n_items, params, len(dataset))  # train_model's recipe
            try:
                # in one process the shipped fit runs beside the engine's earlier-slice fit; a distributed
                # fit's workers step together, so there it comes first, on its own
                engine, hybrid_summary = train_hybrid(
                    dataset,
                    features,
                    hp,
                    fit_shipped if dist is None else fit_shipped(),
                    log=say,
                    evaluation=evaluation if from_hybrid else None,
                )
                hybrid = engine.state()
                del engine  # its sources' memory, before the model's arrays are built
            except ValueError as e:  # too little data for a ranker: the embedding model still ships
                out_print(f"hybrid: not built: {e}; the model serves the embedding model alone", flush=True)
                hybrid_summary = {"skipped": str(e), "auto": "nn"}
        if not shipped:
            fit_shipped()
        model, metrics = shipped[0]
        if hybrid_summary is not None:
            metrics["hybrid"] = hybrid_summary
            if from_hybrid:  # the earlier slice's figures, or (too few users for it) a quick evaluation fit
                metrics.update(
                    evaluation
                    or evaluation_fit(dataset, model.params(), holdout_fraction=args.holdout_fraction, log=say)
                )
    except (IngestError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if dist is not None:
        print(f"worker {dist.rank} of {dist.workers}: weights sha256 {weights_fingerprint(model)}", flush=True)
        if not chief:  # TensorFlow's pattern: the chief saves, the others leave no files behind
            print(f"worker {dist.rank} of {dist.workers}: done; the chief writes the model", flush=True)
            return 0
    data_summary = {
        "events": len(events),
        "rejected_lines": summary.rejected,
        "rejected_reasons": dict(summary.reasons),
        "positives": len(dataset),
        "users": dataset.n_users,
        "items": dataset.n_items,
        "catalogue_items": len(catalogue),
        "ts_min": _iso(dataset.ts.min()),
        "ts_max": _iso(dataset.ts.max()),
        "input_files": [str(f) for f in files],
        "input_sha256": sha256_files(files),
        "event_weights": weights,
        "rating_threshold": args.rating_threshold,
        "fit": fit_summary(dataset, "all"),
        "trained_on": f"all {len(dataset)} positives of the input",
        "input_files_sha256": files_sha256(files),
        "evaluation": {"mode": args.evaluation, "holdout_fraction": args.holdout_fraction},
        "seen_events": seen_events,
    }
    out = save_arrays_bundle(
        args.model_dir,
        arrays=model_arrays(model, dataset, events, seen_events),
        user_ids=dataset.users.ids,
        item_ids=dataset.items.ids,
        catalogue=catalogue,
        version=args.version or new_version(),
        hyperparameters=model.params(),
        data_summary=data_summary,
        metrics=metrics,
        keras_model=model.keras_model,
        hybrid=hybrid,
        extra_metadata={"training": {"distribution": dist.describe() if dist else dict(distribution.SINGLE)}},
    )
    print(f"wrote {out} in {time.perf_counter() - started:.1f}s total", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
