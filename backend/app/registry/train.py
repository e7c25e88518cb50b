"""Train the Keras embedding model on a JSONL log and write a model directory (the training CLI).

    python -m app.registry.train --data-path backend/data/interactions.jsonl \\
        --items-path backend/data/items.jsonl --model-dir backend/models/latest

It sits in the registry package, above the model and evaluation packages, because it uses both: the
model to fit and the held-out check (``app.eval.holdout``) to report on it. ``python -m
app.model.train`` still runs it (the old name).

Steps: read and validate the log (bad lines skipped and reported, or ``--strict``), aggregate
positives, hold out each user's latest positive (for a ``--holdout-fraction`` share of the users with
at least 3 positives), train on the rest with per-epoch progress (held-out NDCG@10 every 10 epochs), report the
held-out loss, HitRate@10 and NDCG@10 beside the most-popular baseline on the same slice, and write
the model directory atomically (``app.model.artifacts``).

The shipped model is the one trained without the held-out slice (one fit, so ML-100K trains well
under a minute); its history (``arrays.npz``) holds *all* positives, so at serving time a user's
vector includes the held-out item too. ``--refit`` trains once more on everything instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.data.aggregate import parse_weights
from app.data.catalog import read_items
from app.data.dataset import load_dataset
from app.data.events import IngestError, list_log_files
from app.data.features import average_ratings, last_seen
from app.data.types import Dataset, EventLog
from app.eval.holdout import heldout_metrics, holdout_split
from app.files import sha256_files
from app.model.artifacts import history_arrays, new_version, save_arrays_bundle
from app.model.embedding import DEFAULT_PARAMS, LOSSES, POOLINGS, SAMPLINGS, SCHEDULES, EmbeddingRecommender
from app.model.popularity import PopularityRecommender

HELDOUT_EVERY = 10  # epochs between held-out evaluations in the progress lines (and always at the end)


def train_model(
    dataset: Dataset,
    catalogue: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    holdout_fraction: float = 1.0,
    refit: bool = False,
    log: Callable[[str], None] | None = print,
) -> tuple[EmbeddingRecommender, dict[str, Any]]:
    """Hold out the latest positives, train, evaluate against most-popular; (model, metrics).

    ``params``: ``EmbeddingRecommender`` hyperparameters (defaults for the missing ones).
    ``catalogue`` is accepted for symmetry with the CLI (the model itself uses no item features).
    """
    say = log or (lambda s: None)
    hp = {**DEFAULT_PARAMS, **dict(params or {})}
    train, held = holdout_split(dataset, holdout_fraction, hp["seed"])
    train_m = train.matrix()
    held_m = held.matrix()
    held_m.data[:] = 1.0
    n_held = int(np.count_nonzero(np.diff(held_m.indptr)))
    model = EmbeddingRecommender(**hp)
    say(
        f"training on {len(train)} positives ({dataset.n_users} users, {dataset.n_items} items); "
        f"held out: {n_held} users' latest positive"
    )

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        member = f"member {int(logs['member'])}/{hp['ensemble']} " if "member" in logs else ""
        epoch = (epoch - 1) % hp["epochs"] + 1
        line = f"{member}epoch {epoch:>3}/{hp['epochs']}: loss {logs['loss']:.4f}  {logs['seconds']:.1f}s"
        if n_held and (
            epoch % HELDOUT_EVERY == 0 or epoch == hp["epochs"]
        ):  # scoring every epoch costs ~1/3 of the fit
            model.pull_arrays()
            m = heldout_metrics(model.score, train_m, held_m)
            line += f"  held-out HR@10 {m['hitrate@10']:.4f} NDCG@10 {m['ndcg@10']:.4f}"
        say(line)

    t0 = time.perf_counter()
    model.fit(train_m, on_epoch=on_epoch, recency=train.recency())
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {"train_seconds": round(seconds, 2), "heldout_users": n_held}
    if n_held:
        metrics.update(heldout_metrics(model.score, train_m, held_m))
        metrics["loss"] = model.heldout_loss(held.user_idx, held.item_idx, train_m, dataset.matrix())
        popular = PopularityRecommender().fit(train_m)
        metrics["popular"] = heldout_metrics(popular.score, train_m, held_m)
        pop = metrics["popular"]
        say(
            f"held-out ({n_held} users): loss {metrics['loss']:.4f}  HR@10 {metrics['hitrate@10']:.4f}  "
            f"NDCG@10 {metrics['ndcg@10']:.4f}  |  most popular: HR@10 {pop['hitrate@10']:.4f}  NDCG@10 {pop['ndcg@10']:.4f}"
        )
    if refit and n_held:
        say("refitting on all positives")
        model = EmbeddingRecommender(**hp)
        t1 = time.perf_counter()
        model.fit(
            dataset.matrix(),
            on_epoch=lambda e, logs: say(f"refit step {e:>3}: loss {logs['loss']:.4f}  {logs['seconds']:.1f}s"),
            recency=dataset.recency(),
        )
        metrics["refit_seconds"] = round(time.perf_counter() - t1, 2)
    metrics["final_model"] = "refit on all positives" if refit and n_held else "trained without the held-out slice"
    return model, metrics


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def model_arrays(model: EmbeddingRecommender, dataset: Dataset, events: EventLog) -> dict[str, np.ndarray]:
    """The ``arrays.npz`` content: factors, the full positives as history, item statistics."""
    history = dataset.matrix()
    return {
        "user_factors": model.user_factors,
        "history_factors": model.history_factors,
        "item_factors": model.item_factors,
        "item_bias": model.item_bias,
        **history_arrays(history),
        "item_popularity": np.bincount(dataset.item_idx, minlength=dataset.n_items).astype(np.float64),
        "item_avg_rating": average_ratings(events, dataset),
        "item_last_ts": last_seen(dataset),
    }


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the module docstring's layout and shows every default."""


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
    p.add_argument("--epochs", type=int, default=d["epochs"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
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
        type=int,
        default=d["ensemble"],
        help="members trained with seeds seed, seed+1000, ...; stored as one model scoring their mean",
    )
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument(
        "--holdout-fraction",
        type=float,
        default=1.0,
        help="share of users (with >= 3 positives) whose latest positive is held out for evaluation; 0 = none",
    )
    p.add_argument(
        "--refit", action="store_true", help="after evaluating, train again on all positives (twice the time)"
    )
    p.add_argument("--event-weights", help="JSON object or path to a JSON file laid over the default event weights")
    p.add_argument("--rating-threshold", type=float, default=4.0, help="a rating event is a positive at or above this")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.add_argument("--rejects-path", type=Path, help="write rejected lines here (JSONL with file, line and reason)")
    p.add_argument("--version", help="version id (default: UTC time + random suffix)")
    return p


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
    started = time.perf_counter()
    try:
        EmbeddingRecommender(**params)  # validate hyperparameters before reading any data
        if not 0.0 <= args.holdout_fraction <= 1.0:
            raise ValueError("--holdout-fraction must be between 0 and 1")
        weights = parse_weights(args.event_weights)
        files = list_log_files(args.data_path)
        dataset, events, summary = load_dataset(
            args.data_path,
            weights=weights,
            rating_threshold=args.rating_threshold,
            strict=args.strict,
            rejects_path=args.rejects_path,
        )
        print(f"read {summary.describe()}", flush=True)
        if len(dataset) == 0:
            raise ValueError(f"{args.data_path}: no positives (check --event-weights and --rating-threshold)")
        catalogue = read_items(args.items_path, strict=args.strict) if args.items_path else {}
        model, metrics = train_model(
            dataset,
            catalogue,
            params,
            holdout_fraction=args.holdout_fraction,
            refit=args.refit,
            log=lambda s: print(s, flush=True),
        )
    except (IngestError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
        "holdout_fraction": args.holdout_fraction,
    }
    out = save_arrays_bundle(
        args.model_dir,
        arrays=model_arrays(model, dataset, events),
        user_ids=dataset.users.ids,
        item_ids=dataset.items.ids,
        catalogue=catalogue,
        version=args.version or new_version(),
        hyperparameters=model.params(),
        data_summary=data_summary,
        metrics=metrics,
        keras_model=model.keras_model,
    )
    print(f"wrote {out} in {time.perf_counter() - started:.1f}s total", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
