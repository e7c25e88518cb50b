"""One retraining run: ingest new data, train a candidate, compare it with production, promote or keep.

    python -m app.registry.retrain --registry-dir DIR --data-path BASE.jsonl [--items-path ITEMS.jsonl]
        [--new-logs PATH ...] [--database-url URL] [--service-url http://127.0.0.1:8000] [--every SECONDS]

1. Ingest: new JSONL logs and what the service stored (``events`` rows and ``engagements`` rows after
   the last ingested ids; withdrawn engagements left out) are validated and saved as this run's batch
   (``app.registry.ingest``); the report says what was new (log events, online events and online
   engagements separately, users, items) and what was rejected.
2. Train: the merged data (base file + every batch) is aggregated into positives and split
   (leave-last-out by default, the project's primary evaluation protocol). The candidate is fitted on the
   split's train part, and so are the baselines (for the report).
3. Evaluate on data neither model was trained on. Every model is scored on the same validation rows
   with the same exclusions: every item the user had seen before the target (any event of the seen
   event types, ``Settings.seen_events``; ``app.eval.evaluate.seen_exclusion``). The candidate never
   saw the validation rows. For production, ``app.registry.compare.training_overlap`` counts the
   validation rows whose (user, item) pair it was fitted on (its metadata's ``data_summary.fit`` says
   whether it was fitted on all positives, as the training CLI does, or on a split's train part, whose
   held-out rows the run keeps in ``heldout.npz``), and the comparison is one of:

   - ``as-is``: no overlap (the usual case after a retraining run: held-out rows are each user's
     latest, new events come later, and the user/item indices keep production's order so timestamp
     ties are broken the same way: ``stable_ids``): production is scored as it is, on every
     evaluated user;
   - ``unseen-users``: overlap, but at least ``min_gate_users`` evaluated users have validation rows
     production never saw (e.g. a CLI-trained production model and users with new events): every
     model is scored on those users only;
   - ``refit``: overlap and too few unseen users: production's configuration (its hyperparameters,
     model type ``nn``) is fitted on the candidate's train part and that refit is compared. Both are
     then fitted on the same data, and the candidate is production's successor on newer data, so it
     is promoted when it is as good within the ``promotion_min_improvement`` margin (training noise),
     where a comparison with the served model itself must improve by that margin.

   Production also "saw" a validation row when the row is an engagement with an item that production
   itself put in the user's list (``Store.engaged_through``, with ``--database-url``): a model is
   bound to score well on the clicks its own lists collected, so such rows count as overlap too. In a
   closed loop where every new positive came through production's lists, this makes the comparison a
   refit.
   - ``refused``: none of these is possible (unknown configuration): the decision is ``refused``, the
     candidate stays in staging, and the reason says what to do. An unfair comparison is never decided.
4. Decide: ``app.registry.gate.decide``; the candidate is registered (staging), then promoted
   to production or archived (kept in staging when refused), with the decision (every metric and rule,
   and ``comparison``: how production was judged) in ``decision.json``, ``report.md``, the audit log
   and ``runs.jsonl``; after a promotion the service is told to reload. The served artifact is exactly
   the one that was judged (no refit after the decision); its metadata records what it was fitted on
   (``data_summary.fit``: the split's train part, time range, protocol), the input files' hashes, the
   database rows ingested (``database_rows``) and ``online_through`` (the last ``events`` and
   ``engagements`` ids in its data: the service treats rows after them as online history).

Cron (every night at 03:15; ``flock`` skips a run while the previous one is still going)::

    15 3 * * * cd /srv/recommender && flock -n /tmp/recommender-retrain.lock env PYTHONPATH=backend \\
        .venv/bin/python -m app.registry.retrain --registry-dir /srv/registry --data-path /srv/data/interactions.jsonl \\
        --items-path /srv/data/items.jsonl --database-url sqlite:////srv/data/recommender.db \\
        --service-url http://127.0.0.1:8000 >> /var/log/recommender-retrain.log 2>&1
"""

from __future__ import annotations

import contextlib
import io
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
from app.eval.evaluate import seen_exclusion
from app.eval.splits import Split, filter_positives, make_split
from app.files import (
    append_lines_durable,
    file_lock,
    read_jsonl,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
)
from app.model.artifacts import ModelLoadError, load_bundle, new_version, save_arrays_bundle
from app.registry.compare import (
    Remapped,
    evaluate_models,
    fit_baselines,
    refit_config,
    refit_production,
    training_overlap,
)
from app.registry.gate import PRIMARY_METRIC, decide, refuse
from app.registry.ingest import NewData, batch_files, concat_logs, ingest_new, load_manifest, new_run_id
from app.registry.notify import reload_service
from app.registry.run_report import report_markdown
from app.registry.state import (
    DECISION_FILE,
    EVALUATION_FILE,
    HELDOUT_FILE,
    REPORT_FILE,
    RUNS_FILE,
    production_model_dir,
    read_model_metadata,
    utc_now,
)
from app.registry.tracking import track_retraining_run
from app.registry.train import fit_summary, model_arrays, train_model
from app.registry.versions import Registry

WORK_DIR = "work"
RUN_LOCK = ".retrain.lock"
DEFAULT_BASELINES = ("popular", "itemknn", "ease", "als")
MIN_GATE_USERS = 50  # unseen-users comparison: at least this many evaluated users production never saw


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
    min_gate_users: int = MIN_GATE_USERS
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
    manifest = load_manifest(root)
    summary = {
        "run_id": run_id,
        "base_files": [str(p) for p in opts.data_paths],
        "input_files_sha256": {
            str(f): sha256_file(f)
            for f in [*list_log_files(opts.data_paths), *previous, *([new.batch_file] if new.batch_file else [])]
        },
        "database_rows": database_rows(manifest),
        "online_through": new.online_through(),
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


def database_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every database id range in the training data (all committed batches): run, table, first and last id."""
    out = []
    for b in manifest["batches"]:
        for src in b.get("sources", []):
            if src.get("kind") in ("database", "database-engagements") and src.get("rows"):
                table = "events" if src["kind"] == "database" else "engagements"
                out.append(
                    {"run_id": b.get("run_id"), "table": table, "first_id": src["first_id"], "last_id": src["last_id"]}
                )
    return out


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

    ``evaluation="none"``: the split already holds the validation rows out, so nothing more is withheld.
    """
    model, info = train_model(split.train, catalogue, params, evaluation="none", log=None)
    return model, {**info, "params": model.params()}


def save_candidate(
    model: Any,
    data: EvalData,
    out_dir: Path,
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
    seen_events: Sequence[str] | None = None,
) -> Path:
    """Write the model directory (the model package's format). Its history is *all* positives of the
    merged data, so at serving time users are built from (and never shown) everything they did."""
    dataset = data.dataset
    return Path(
        save_arrays_bundle(
            out_dir,
            arrays=model_arrays(model, dataset, data.events, seen_events),
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


def write_heldout(model_dir: Path, split: Split) -> None:
    """``heldout.npz``: the rows the candidate's split held out (validation and test), in the model's
    indices, so a later run knows exactly which of the model's history rows it was not fitted on."""
    buf = io.BytesIO()
    np.savez(
        buf,
        user_idx=np.concatenate([split.validation.user_idx, split.test.user_idx]).astype(np.int32),
        item_idx=np.concatenate([split.validation.item_idx, split.test.item_idx]).astype(np.int32),
    )
    write_bytes_atomic(Path(model_dir) / HELDOUT_FILE, buf.getvalue())


@dataclass
class Champion:
    """How the production model takes part in the gate: its scorer (None: absent, unreadable, refused)."""

    version: str | None = None
    scorer: Any = None
    error: str | None = None
    comparison: dict[str, Any] = field(default_factory=dict)
    users: np.ndarray | None = None  # evaluate only these users (unseen-users comparison)
    refused: str | None = None


def self_exposed(database_url: str | None, version: str) -> set[tuple[str, str]]:
    """(user_id, item_id) pairs that lists served by ``version`` put in front of the user and the user
    engaged with (empty without a database)."""
    if not database_url:
        return set()
    from app.store import Store

    store = Store.from_url(database_url)
    try:
        return store.engaged_through(version)
    finally:
        store.engine.dispose()


def judge_production(root: Path, split: Split, min_gate_users: int, database_url: str | None = None) -> Champion:
    """Choose a fair comparison with the production model (module docstring, step 3); with
    ``database_url``, the rows production's own lists collected count as its data (``self_exposed``)."""
    prod_dir = production_model_dir(root)
    if prod_dir is None:
        return Champion(comparison={"method": "first-model"})
    version = prod_dir.name
    try:
        bundle = load_bundle(prod_dir)
    except ModelLoadError as exc:
        return Champion(version, error=str(exc), comparison={"method": "unreadable"})
    overlap = training_overlap(bundle, prod_dir, split)
    exposed = self_exposed(database_url, version)
    n_exposed = 0
    if exposed:
        v = split.validation
        users, items = np.asarray(split.users.ids, dtype=object), np.asarray(split.items.ids, dtype=object)
        hit = np.fromiter(
            ((u, i) in exposed for u, i in zip(users[v.user_idx], items[v.item_idx], strict=True)), bool, len(v)
        )
        n_exposed = int(hit.sum())
        overlap["users"] = np.union1d(overlap["users"], v.user_idx[hit]).astype(np.int64)
        overlap["rows"] += n_exposed
    _, _, evaluated = split.stage_matrices("validation")
    leaked_users = np.intersect1d(evaluated, overlap["users"])
    unseen = np.setdiff1d(evaluated, overlap["users"])
    comparison: dict[str, Any] = {
        "overlap_rows": overlap["rows"],
        "self_exposed_rows": n_exposed,
        "validation_rows": overlap["validation_rows"],
        "production_fitted_on": overlap["basis"],
        "evaluated_users": int(evaluated.size),
        "users_with_overlap": int(leaked_users.size),
        "unseen_users": int(unseen.size),
        "production_data": {
            k: (bundle.metadata.get("data_summary") or {}).get(k) for k in ("fit", "input_sha256", "online_through")
        },
    }
    as_is = Remapped(bundle.scorer(), bundle.users, bundle.items, split.users, split.items)
    if overlap["rows"] == 0:
        comparison["method"] = "as-is"
        comparison["detail"] = "production was fitted on none of the validation rows: scored as it is"
        return Champion(version, as_is, comparison=comparison)
    if unseen.size >= min_gate_users:
        comparison["method"] = "unseen-users"
        comparison["detail"] = (
            f"production was fitted on, or its own lists collected, {overlap['rows']} of "
            f"{overlap['validation_rows']} validation rows ({n_exposed} collected by its lists); every model is "
            f"scored on the {unseen.size} evaluated users whose validation rows it never saw"
        )
        return Champion(version, as_is, comparison=comparison, users=unseen)
    params, why_not = refit_config(bundle.metadata)
    if params is None:
        comparison["method"] = "refused"
        reason = (
            f"production model {version} was fitted on {overlap['rows']} of this split's {overlap['validation_rows']} "
            f"validation rows, only {unseen.size} evaluated users are unseen by it (fewer than "
            f"{min_gate_users}), and its configuration cannot be refitted ({why_not}). The candidate stays in "
            "staging: promote it by hand after checking it (python -m app.registry promote VERSION --to "
            "production), or wait for more new data (or lower --min-gate-users) so that it can be judged on "
            "users production never saw"
        )
        comparison["detail"] = reason
        return Champion(version, None, comparison=comparison, refused=reason)
    model, secs = refit_production(params, split)
    comparison["method"] = "refit"
    comparison["refit_seconds"] = secs
    comparison["refit_params"] = params
    comparison["detail"] = (
        f"production was fitted on, or its own lists collected, {overlap['rows']} of {overlap['validation_rows']} "
        f"validation rows ({n_exposed} collected by its lists) and only {unseen.size} evaluated users are unseen "
        f"by it (< {min_gate_users}): its configuration was refitted on the candidate's train part, and the "
        "candidate, fitted on the same data, must be at least as good"
    )
    return Champion(version, model, comparison=comparison)


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
            t = time.perf_counter()
            champion = judge_production(root, split, opts.min_gate_users, opts.database_url)
            seconds["judge_production"] = round(time.perf_counter() - t, 3)
            prod_version, prod_scorer, prod_error = champion.version, champion.scorer, champion.error
            models: dict[str, Any] = {"candidate": model}
            if prod_scorer is not None:
                models["production"] = prod_scorer
            models.update(baselines)
            t = time.perf_counter()
            exclude = seen_exclusion(data.events, split, "validation", opts.settings.seen_events)
            results = evaluate_models(models, split, n_boot=opts.n_boot, exclude=exclude, users=champion.users)
            seconds["evaluate"] = round(time.perf_counter() - t, 3)
            results["candidate"]["fit_seconds"] = train_info.get("train_seconds")
            for name, secs in baseline_fit.items():
                results[name]["fit_seconds"] = secs
            if isinstance(prod_scorer, Remapped):
                results["production"]["mapping"] = prod_scorer.coverage
            if "production" in results:
                results["production"]["method"] = champion.comparison.get("method")
                if champion.comparison.get("method") == "refit":
                    results["production"]["fit_seconds"] = champion.comparison.get("refit_seconds")
            comparison = {
                **champion.comparison,
                "gate_users": results["candidate"]["n_users"],
                "exclusion": "every item seen before the target (event types: "
                + (", ".join(opts.settings.seen_events) if opts.settings.seen_events is not None else "all")
                + "), the target excepted",
            }

            t = time.perf_counter()
            validation = split.validation
            slice_name = f"validation part of the {split.protocol} split ({results['candidate']['n_users']} users"
            if champion.users is not None:
                slice_name += ", those whose validation rows production never saw"
            metrics = {
                **results["candidate"]["metrics"],
                "loss": model.heldout_loss(
                    validation.user_idx, validation.item_idx, split.train.matrix(), data.dataset.matrix()
                ),
                "slice": slice_name + ")",
                "describes": f"retraining run {run_id}'s gate evaluation ({comparison.get('method')}): the "
                "candidate as shipped, fitted on the split's train part",
                "train_seconds": train_info.get("train_seconds"),
            }
            if "popular" in results:
                metrics["popular"] = results["popular"]["metrics"]
            data_summary["trained_on"] = f"train part of the {split.protocol} split: {len(split.train)} positives"
            data_summary["fit"] = fit_summary(
                split.train,
                "train",
                protocol=split.protocol,
                split_info=split.info,
                heldout_rows=len(split.validation) + len(split.test),
                heldout_file=HELDOUT_FILE,
            )
            data_summary["seen_events"] = opts.settings.seen_events
            model_dir = save_candidate(
                model, data, work / "model", data_summary, metrics, seen_events=opts.settings.seen_events
            )
            write_heldout(model_dir, split)
            seconds["save"] = round(time.perf_counter() - t, 3)
            candidate_version = orjson.loads((model_dir / "metadata.json").read_bytes())["version"]
            # Two recipes fitted on the same data: the candidate (production's successor on newer data) must
            # be as good, within the same margin (training noise), not better by it.
            margin = opts.settings.promotion_min_improvement
            gate_args = dict(
                min_improvement=-margin if comparison.get("method") == "refit" else margin,
                max_regression=opts.settings.promotion_max_regression,
                candidate_version=candidate_version,
                production_version=prod_version,
                comparison=comparison,
            )
            if champion.refused:
                decision = refuse(champion.refused, **gate_args)
            else:
                decision = decide(
                    results["candidate"]["metrics"],
                    results["production"]["metrics"] if "production" in results else None,
                    **gate_args,
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
                else {"version": prod_version, "error": prod_error, "method": comparison.get("method")},
                "comparison": comparison,
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
            stage = "production"
        elif decision.refused:  # never judged: left in staging for a person to decide
            stage = "staging"
        else:
            registry.archive(version, actor=opts.actor, reason=decision.reason)
            stage = "archived"
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
        slim["gate"] = {
            "method": comparison.get("method"),
            "users": comparison.get("gate_users"),
            "protocol": split.protocol,
            "candidate": version,
            "production": prod_version if "production" in evaluation["models"] else None,
        }
        append_lines_durable(root / RUNS_FILE, [orjson.dumps(slim, option=orjson.OPT_SERIALIZE_NUMPY)])
        return record
