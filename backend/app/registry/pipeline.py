"""One retraining run: ingest new data, train a candidate, compare it with production, promote or keep.

    python -m app.registry.retrain --registry-dir DIR --data-path BASE.jsonl [--items-path ITEMS.jsonl]
        [--new-logs PATH ...] [--database-url URL] [--service-url http://127.0.0.1:8000] [--every SECONDS]

1. Ingest: new JSONL logs and the service's stored events (``events`` table, rows after the last
   ingested id) are validated and saved as this run's batch (``app.registry.ingest``); the report
   says what was new (events, users, items) and what was rejected.
2. Train: the merged data (base file + every batch) is aggregated into positives and split
   (leave-last-out by default, the project's primary evaluation protocol). The candidate is fitted on the
   split's train part, and so are the baselines (for the report).
3. Evaluate: candidate, production and baselines are scored on the same validation part. The
   production model is used as it is (its item space mapped onto the split's); it was itself fitted
   on an earlier split's train part, which never contains this split's validation rows (held-out
   rows are each user's latest, new events come later, and the user/item indices keep production's
   order so timestamp ties are broken the same way: ``stable_ids``), so the comparison is fair.
4. Decide: ``app.registry.gate.decide``; the candidate is registered (staging), then promoted
   to production or archived, with the decision (every metric and rule) in ``decision.json``,
   ``report.md``, the audit log and ``runs.jsonl``; after a promotion the service is told to reload.
   The served artifact is exactly the one that was judged (no refit after the decision).

Cron (every night at 03:15; ``flock`` skips a run while the previous one is still going)::

    15 3 * * * cd /srv/recommender && flock -n /tmp/recommender-retrain.lock env PYTHONPATH=backend \\
        .venv/bin/python -m app.registry.retrain --registry-dir /srv/registry --data-path /srv/data/interactions.jsonl \\
        --items-path /srv/data/items.jsonl --database-url sqlite:////srv/data/recommender.db \\
        --service-url http://127.0.0.1:8000 >> /var/log/recommender-retrain.log 2>&1
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.config import Settings, get_settings
from app.data.aggregate import to_positives
from app.data.catalog import read_items
from app.data.dataset import build_dataset
from app.data.events import list_log_files, read_events
from app.data.idmap import IdMap
from app.eval.data import EvalData
from app.eval.splits import Split, filter_positives, make_split
from app.files import append_lines_durable, file_lock, read_jsonl, write_bytes_atomic, write_json_atomic
from app.model.artifacts import new_version, save_arrays_bundle
from app.registry.compare import evaluate_models, fit_baselines, production_scorer
from app.registry.gate import PRIMARY_METRIC, decide
from app.registry.ingest import NewData, batch_files, concat_logs, ingest_new, load_manifest, new_run_id
from app.registry.notify import reload_service
from app.registry.run_report import report_markdown
from app.registry.state import (
    DECISION_FILE,
    EVALUATION_FILE,
    REPORT_FILE,
    production_model_dir,
    read_model_metadata,
    utc_now,
)
from app.registry.tracking import track_retraining_run
from app.registry.train import model_arrays, train_model
from app.registry.versions import Registry

RUNS_FILE = "runs.jsonl"
WORK_DIR = "work"
RUN_LOCK = ".retrain.lock"
DEFAULT_BASELINES = ("popular", "itemknn", "ease", "als")


class RetrainError(RuntimeError):
    """A run that cannot go on (no data, another run in progress, ...); the message says why."""


@dataclass
class RetrainOptions:
    registry_dir: Path
    data_paths: list[Path]
    items_path: Path | None = None
    new_logs: list[Path] = field(default_factory=list)
    database_url: str | None = None
    service_url: str | None = None
    protocol: str = "leave-last-out"
    baselines: Sequence[str] = DEFAULT_BASELINES
    train_params: dict[str, Any] = field(default_factory=dict)
    min_item_positives: int = 1
    min_user_positives: int = 1
    force: bool = False  # train even when nothing new arrived
    actor: str = "retrain"
    n_boot: int = 500
    settings: Settings = field(default_factory=get_settings)


@contextlib.contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """One retraining run per registry at a time (a cron run that overlaps a slow one exits cleanly)."""
    with contextlib.ExitStack() as stack:
        try:  # only taking the lock is guarded: a BlockingIOError from inside the run is not "locked"
            stack.enter_context(file_lock(root / RUN_LOCK, blocking=False))
        except BlockingIOError:
            raise RetrainError(f"another retraining run holds {root / RUN_LOCK}; not starting a second one") from None
        yield


def _time_range(ts: np.ndarray) -> list[int] | None:
    return [int(ts.min()), int(ts.max())] if ts.size else None


def production_ids(root: Path) -> tuple[list[str], list[str]]:
    """User and item IDs of the production model, in its index order ([] when there is none)."""
    prod_dir = production_model_dir(root)
    if prod_dir is None:
        return [], []
    meta = read_model_metadata(prod_dir)
    return list(meta.get("user_ids") or []), list(meta.get("item_ids") or [])


def stable_ids(previous: Sequence[str], values: np.ndarray) -> IdMap:
    """The production model's IDs that still occur, in its order, then the new ones sorted.

    Indices then mean the same user/item in the candidate's data as in production's, so every
    index-based rule (leave-last-out breaks timestamp ties by a hash of the indices) treats the old
    positives exactly as when production was trained: its training rows never become validation rows.
    """
    present = set(np.unique(values.astype(str)).tolist())
    kept = [v for v in previous if v in present]
    known = set(kept)
    return IdMap(kept + sorted(present - known))


def ingest(opts: RetrainOptions, run_id: str) -> NewData:
    """Step 1a: validate and commit this run's new events (logs and the service's database)."""
    list_log_files(opts.data_paths)  # a missing base file fails here, before anything is ingested
    return ingest_new(
        Path(opts.registry_dir),
        run_id,
        opts.new_logs,
        opts.database_url,
        event_types=opts.settings.event_weights.keys(),
    )


def prepare_data(opts: RetrainOptions, run_id: str, new: NewData) -> tuple[EvalData, dict[str, Any]]:
    """Step 1b: merge the base data, earlier batches and the new events; aggregate: (data, data summary)."""
    root = Path(opts.registry_dir)
    weights = dict(opts.settings.event_weights)
    previous = [p for p in batch_files(root) if p != new.batch_file]
    old_log, old_summary = read_events([*opts.data_paths, *previous], event_types=weights.keys())
    events = concat_logs([old_log, new.log])
    if len(events) == 0:
        raise RetrainError(f"no valid events in {', '.join(map(str, opts.data_paths))} or the new data")
    positives = to_positives(events, weights, opts.settings.rating_threshold)
    prod_users, prod_items = production_ids(root)
    dataset = build_dataset(
        positives, stable_ids(prod_users, positives.user_id), stable_ids(prod_items, positives.item_id)
    )
    filter_report = None
    if opts.min_item_positives > 1 or opts.min_user_positives > 1:
        dataset, report = filter_positives(dataset, opts.min_item_positives, opts.min_user_positives)
        filter_report = report.as_dict()
    catalogue = read_items(opts.items_path, strict=False) if opts.items_path else {}
    old_users, old_items = set(old_log.user_id.tolist()), set(old_log.item_id.tolist())
    new_users = set(new.log.user_id.tolist()) - old_users
    new_items = set(new.log.item_id.tolist()) - old_items
    summary = {
        "run_id": run_id,
        "base_files": [str(p) for p in opts.data_paths],
        "previous_batches": len(previous),
        "events": len(events),
        "events_rejected_in_old_data": old_summary.rejected,
        "positives": len(dataset),
        "users": dataset.n_users,
        "items": dataset.n_items,
        "catalogue_items": len(catalogue),
        "time_range": _time_range(events.ts),
        "new": {
            "events": len(new.log),
            "users": len(new_users),
            "items": len(new_items),
            "items_not_in_catalogue": len([i for i in new_items if catalogue and i not in catalogue]),
            "time_range": _time_range(new.log.ts),
            **new.summary(),
        },
        "filter": filter_report,
    }
    return EvalData(dataset, events, catalogue, {"run_id": run_id}), summary


def untrained_batches(root: Path, exclude: str) -> int:
    """Batches ingested by runs that never finished (crashed after ingesting): their data is still untrained."""
    finished = {r.get("run_id") for r in read_jsonl(root / RUNS_FILE) if r.get("finished")}
    return sum(
        1
        for b in load_manifest(root)["batches"]
        if b.get("events") and b.get("run_id") != exclude and b.get("run_id") not in finished
    )


def train_candidate(split: Split, catalogue: dict[str, Any], params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Fit the Keras model on the split's train part with the training CLI's trainer: (model, training info).

    ``holdout_fraction=0``: the split already holds the validation rows out, so nothing more is withheld.
    """
    model, info = train_model(split.train, catalogue, params, holdout_fraction=0.0, log=None)
    return model, {**info, "params": model.params()}


def save_candidate(
    model: Any, data: EvalData, out_dir: Path, data_summary: dict[str, Any], metrics: dict[str, Any]
) -> Path:
    """Write the model directory (the model package's format). Its history is *all* positives of the
    merged data, so at serving time users are built from (and never shown) everything they did."""
    dataset = data.dataset
    return Path(
        save_arrays_bundle(
            out_dir,
            arrays=model_arrays(model, dataset, data.events),
            user_ids=dataset.users.ids,
            item_ids=dataset.items.ids,
            catalogue=data.catalogue,
            version=new_version(),
            hyperparameters=model.params(),
            data_summary=data_summary,
            metrics=metrics,
            keras_model=model.keras_model,
        )
    )


def run_once(opts: RetrainOptions) -> dict[str, Any]:
    """One full run (ingest, train, evaluate, decide, register, promote/archive, track, reload); returns its record."""
    root = Path(opts.registry_dir)
    registry = Registry(root)
    run_id = new_run_id()
    started_at = utc_now()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with run_lock(root):
        new = ingest(opts, run_id)
        production_before = registry.production()
        untrained = untrained_batches(root, exclude=run_id)
        if production_before and not len(new.log) and not untrained and not opts.force:
            # Nothing to learn from: no training, no record in runs.jsonl (a loop would fill it with these).
            seconds["total"] = round(time.perf_counter() - t0, 3)
            return {
                "run_id": run_id,
                "started_at": started_at,
                "production_before": production_before,
                "data": {"new": new.summary() | {"events": 0}},
                "decision": "skip",
                "candidate": None,
                "reason": "no new events since the last run (use --force to retrain anyway)",
                "seconds": seconds,
            }
        data, data_summary = prepare_data(opts, run_id, new)
        data_summary["untrained_batches_of_failed_runs"] = untrained
        seconds["ingest"] = round(time.perf_counter() - t0, 3)
        record: dict[str, Any] = {
            "run_id": run_id,
            "started_at": started_at,
            "data": data_summary,
            "production_before": production_before,
        }

        split = make_split(data.dataset, opts.protocol)
        sizes = split.sizes()
        work = root / WORK_DIR / run_id
        work.mkdir(parents=True, exist_ok=True)
        try:
            t = time.perf_counter()
            model, train_info = train_candidate(split, data.catalogue, opts.train_params)
            seconds["train_candidate"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            baselines, baseline_fit = fit_baselines(opts.baselines, data, split)
            seconds["train_baselines"] = round(time.perf_counter() - t, 3)
            prod_version, prod_scorer, prod_error = production_scorer(root, split)
            models: dict[str, Any] = {"candidate": model}
            if prod_scorer is not None:
                models["production"] = prod_scorer
            models.update(baselines)
            t = time.perf_counter()
            results = evaluate_models(models, split, n_boot=opts.n_boot)
            seconds["evaluate"] = round(time.perf_counter() - t, 3)
            results["candidate"]["fit_seconds"] = train_info.get("train_seconds")
            for name, secs in baseline_fit.items():
                results[name]["fit_seconds"] = secs
            if prod_scorer is not None:
                results["production"]["mapping"] = prod_scorer.coverage

            t = time.perf_counter()
            validation = split.validation
            metrics = {
                **results["candidate"]["metrics"],
                "loss": model.heldout_loss(
                    validation.user_idx, validation.item_idx, split.train.matrix(), data.dataset.matrix()
                ),
                "slice": f"validation part of the {split.protocol} split ({results['candidate']['n_users']} users)",
                "train_seconds": train_info.get("train_seconds"),
            }
            if "popular" in results:
                metrics["popular"] = results["popular"]["metrics"]
            data_summary["trained_on"] = f"train part of the {split.protocol} split: {len(split.train)} positives"
            model_dir = save_candidate(model, data, work / "model", data_summary, metrics)
            seconds["save"] = round(time.perf_counter() - t, 3)
            candidate_version = orjson.loads((model_dir / "metadata.json").read_bytes())["version"]
            decision = decide(
                results["candidate"]["metrics"],
                results["production"]["metrics"] if "production" in results else None,
                min_improvement=opts.settings.promotion_min_improvement,
                max_regression=opts.settings.promotion_max_regression,
                candidate_version=candidate_version,
                production_version=prod_version,
            )
            if prod_error:  # the service cannot load it either: judged as if there were no production model
                note = f"production model {prod_version} could not be loaded ({prod_error}), so it is treated as absent"
                decision.rules.insert(0, {"rule": "production_unreadable", "passed": True, "detail": note})
                decision.reason = f"{note}; {decision.reason}"
            evaluation = {
                "run_id": run_id,
                "protocol": split.protocol,
                "stage": "validation",
                "split": sizes,
                "evaluated_users": results["candidate"]["n_users"],
                "primary_metric": PRIMARY_METRIC,
                "candidate": results["candidate"],
                "production": {"version": prod_version, **results["production"]}
                if "production" in results
                else {"version": prod_version, "error": prod_error},
                "baselines": {k: results[k] for k in baselines},
                "models": results,
                "train": train_info,
            }
            record.update(
                candidate=candidate_version, evaluation=evaluation, decision=decision.decision, reason=decision.reason
            )
            record["seconds"] = seconds
            write_json_atomic(model_dir / EVALUATION_FILE, evaluation)
            write_json_atomic(model_dir / DECISION_FILE, decision.to_dict())
            write_bytes_atomic(model_dir / REPORT_FILE, report_markdown(record, decision).encode())

            version = registry.register(
                model_dir,
                actor=opts.actor,
                stage="staging",
                move=True,
                reason=f"retraining run {run_id}: candidate under evaluation",
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                work.parent.rmdir()  # only when no other run's work is there
        if decision.promote:
            registry.promote(version, "production", actor=opts.actor, reason=decision.reason)
        else:
            registry.archive(version, actor=opts.actor, reason=decision.reason)
        stage = "production" if decision.promote else "archived"
        record["stage"] = stage
        params = {
            "candidate": train_info["params"],
            "protocol": split.protocol,
            "baselines": ",".join(opts.baselines),
            "gate": {
                "min_improvement": opts.settings.promotion_min_improvement,
                "max_regression": opts.settings.promotion_max_regression,
            },
        }
        record["tracking"] = track_retraining_run(
            registry,
            version,
            stage,
            params=params,
            evaluation=evaluation,
            data_summary=data_summary,
            decision=decision.to_dict(),
        )
        if decision.promote and opts.service_url:
            record["service_reload"] = reload_service(opts.service_url)
        seconds["total"] = round(time.perf_counter() - t0, 3)
        record["finished"] = True
        slim = {k: v for k, v in record.items() if k != "evaluation"}
        slim["metrics"] = {
            name: {k: res["metrics"].get(k) for k in ("ndcg@10", "recall@20", "hitrate@10", "mrr", "coverage@100")}
            for name, res in evaluation["models"].items()
        }
        append_lines_durable(root / RUNS_FILE, [orjson.dumps(slim, option=orjson.OPT_SERIALIZE_NUMPY)])
        return record
