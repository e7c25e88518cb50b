"""New interaction data for a retraining run: JSONL logs, and the events and engagements the service
stored since the last run.

Accepted new events are written, normalised, to one batch file per run under ``<registry>/data/``
and listed in ``data/manifest.json`` with where they came from (the sha256 of each log file, the id
range of the database rows). The manifest is replaced atomically after the batch is written, so a
crash in between leaves an unlisted batch that is ignored and removed, and nothing is ingested twice:
a log file already in the manifest (same content) is skipped, and database rows are read from the
last ingested id on (``last_event_id`` for the ``events`` table, ``last_engagement_id`` for
``engagements``). Training data = the base file(s) + every batch in the manifest.

Engagements (what users did with a shown list, e.g. the web page's Like and Watched buttons) become
training events: ``event`` = the action type, ``ts`` = the engagement time in whole seconds, the
platform kept; they go through the same JSONL reader as the logs, so the same event weights and
positive rule apply (an action type the weights do not know is rejected and counted, as in a log).
A withdrawal (a row whose ``withdraws`` names an earlier engagement: an undone Like) is never
training data, and neither is an engagement it withdraws when both are read in the same run. An
engagement already ingested by an earlier run is not taken back when its withdrawal arrives later
(the trained models keep it; the count is reported as ``withdrawn_after_ingest``); serving ignores
withdrawn engagements at once, and the next model trained from scratch on an edited base log would
not see it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.data.events import IngestSummary, list_log_files, read_events
from app.data.types import EventLog
from app.files import TMP_PREFIX, read_json, sha256_file, write_bytes_atomic, write_json_atomic
from app.registry.state import utc_now

DATA_DIR = "data"
MANIFEST = "manifest.json"
_COLUMNS = ("user_id", "item_id", "event", "ts", "rating", "weight", "platform")


def empty_log() -> EventLog:
    obj = np.empty(0, dtype=object)
    return EventLog(
        obj, obj.copy(), obj.copy(), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32), obj.copy()
    )


def concat_logs(logs: Sequence[EventLog]) -> EventLog:
    logs = [lg for lg in logs if len(lg)]
    if not logs:
        return empty_log()
    return EventLog(*(np.concatenate([getattr(lg, c) for lg in logs]) for c in _COLUMNS))


def log_to_jsonl(log: EventLog) -> bytes:
    """The JSONL training format (missing rating/weight/platform left out), one line per event."""
    out = []
    dumps = orjson.dumps
    for u, i, e, t, r, w, p in zip(
        log.user_id,
        log.item_id,
        log.event,
        log.ts.tolist(),
        log.rating.tolist(),
        log.weight.tolist(),
        log.platform,
        strict=False,
    ):
        row: dict[str, Any] = {"user_id": u, "item_id": i, "event": e, "ts": t}
        if r == r:  # not NaN
            row["rating"] = r
        if w == w:
            row["weight"] = w
        if p:
            row["platform"] = p
        out.append(dumps(row))
    return b"\n".join(out) + (b"\n" if out else b"")


def load_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / DATA_DIR / MANIFEST
    if not path.is_file():
        return {"batches": [], "last_event_id": 0, "last_engagement_id": 0}
    manifest = read_json(path)
    manifest.setdefault("last_engagement_id", 0)  # manifests written before engagements were ingested
    return manifest


def batch_files(root: Path) -> list[Path]:
    """Every committed batch, oldest first (what the training data adds to the base file)."""
    data = Path(root) / DATA_DIR
    return [data / b["file"] for b in load_manifest(root)["batches"] if b.get("events")]


def read_database_events(database_url: str, after_id: int) -> tuple[list[dict[str, Any]], int]:
    """Rows of the service's ``events`` table with id > ``after_id`` (as JSONL dicts) and the largest id read."""
    import sqlalchemy as sa

    from app.store.db import create_db_engine
    from app.store.schema import events

    engine = create_db_engine(database_url)
    try:
        if not sa.inspect(engine).has_table(events.name):
            raise ValueError(
                f"{database_url}: no '{events.name}' table; is this the service's database (DATABASE_URL)?"
            )
        c = events.c
        q = sa.select(c.id, c.user_id, c.item_id, c.event, c.ts, c.rating, c.weight, c.platform).where(c.id > after_id)
        with engine.connect() as conn:
            rows = conn.execute(q.order_by(c.id)).all()
    finally:
        engine.dispose()
    out = []
    for r in rows:
        row: dict[str, Any] = {"user_id": r.user_id, "item_id": r.item_id, "event": r.event, "ts": int(r.ts)}
        if r.rating is not None:
            row["rating"] = float(r.rating)
        if r.weight is not None:
            row["weight"] = float(r.weight)
        if r.platform:
            row["platform"] = r.platform
        out.append(row)
    return out, (int(rows[-1].id) if rows else after_id)


def read_database_engagements(database_url: str, after_id: int) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """Rows of the service's ``engagements`` table with id > ``after_id`` as JSONL dicts (withdrawals and
    the engagements they withdraw left out), the largest id read, and counts of what was left out."""
    import sqlalchemy as sa

    from app.store.db import create_db_engine
    from app.store.schema import engagements

    engine = create_db_engine(database_url)
    counts = {"rows": 0, "withdrawals": 0, "withdrawn": 0, "withdrawn_after_ingest": 0}
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(engagements.name):
            return [], after_id, counts  # a database from before engagements were stored
        has_withdraws = "withdraws" in {col["name"] for col in inspector.get_columns(engagements.name)}
        c = engagements.c
        cols = [c.id, c.user_id, c.item_id, c.action_type, c.ts, c.platform]
        if has_withdraws:
            cols.append(c.withdraws)
        q = sa.select(*cols).where(c.id > after_id).order_by(c.id)
        with engine.connect() as conn:
            rows = conn.execute(q).all()
    finally:
        engine.dispose()
    withdrawn = {int(r.withdraws) for r in rows if has_withdraws and r.withdraws is not None}
    counts["rows"] = len(rows)
    counts["withdrawals"] = sum(1 for r in rows if has_withdraws and r.withdraws is not None)
    counts["withdrawn_after_ingest"] = sum(1 for w in withdrawn if w <= after_id)
    out = []
    for r in rows:
        if has_withdraws and r.withdraws is not None:
            continue
        if int(r.id) in withdrawn:
            counts["withdrawn"] += 1
            continue
        row: dict[str, Any] = {"user_id": r.user_id, "item_id": r.item_id, "event": r.action_type, "ts": int(r.ts)}
        if r.platform:
            row["platform"] = r.platform
        out.append(row)
    return out, (int(rows[-1].id) if rows else after_id), counts


@dataclass
class NewData:
    """What one run ingested; ``log`` holds the accepted new events (logs, database events, engagements)."""

    log: EventLog
    batch_file: Path | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # log files ingested by an earlier run
    accepted: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejects_path: str | None = None
    last_event_id: int = 0
    last_engagement_id: int = 0
    accepted_by_source: dict[str, int] = field(default_factory=lambda: {"logs": 0, "events": 0, "engagements": 0})
    engagements_left_out: dict[str, int] = field(default_factory=dict)

    def online_through(self) -> dict[str, int]:
        """The largest ``events`` and ``engagements`` ids ingested so far (this run included)."""
        return {"events": self.last_event_id, "engagements": self.last_engagement_id}

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "reasons": self.reasons,
            "rejects_path": self.rejects_path,
            "sources": self.sources,
            "skipped_already_ingested": self.skipped,
            "batch_file": str(self.batch_file) if self.batch_file else None,
            "from_logs": self.accepted_by_source["logs"],
            "online_events": self.accepted_by_source["events"],
            "online_engagements": self.accepted_by_source["engagements"],
            "engagements_left_out": self.engagements_left_out,
            "online_through": self.online_through(),
        }


def _add(summary: IngestSummary, into: NewData) -> None:
    into.accepted += summary.accepted
    into.rejected += summary.rejected
    for k, v in summary.reasons.items():
        into.reasons[k] = into.reasons.get(k, 0) + v


def ingest_new(
    root: Path,
    run_id: str,
    new_logs: Iterable[Path] = (),
    database_url: str | None = None,
    event_types: Collection[str] | None = None,
) -> NewData:
    """Validate new logs and database events, write the accepted ones as this run's batch, commit the manifest."""
    data = Path(root) / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(root)
    listed = {b["file"] for b in manifest["batches"]}
    for stale in data.iterdir():  # batches of a crashed run, temp files
        if stale.name != MANIFEST and (
            stale.name.startswith(TMP_PREFIX) or (stale.name.startswith("batch-") and stale.name not in listed)
        ):
            stale.unlink(missing_ok=True)
    seen_hashes = {s["sha256"] for b in manifest["batches"] for s in b.get("sources", []) if s.get("kind") == "log"}
    out = NewData(
        log=empty_log(),
        batch_file=None,
        last_event_id=int(manifest.get("last_event_id", 0)),
        last_engagement_id=int(manifest.get("last_engagement_id", 0)),
    )
    rejects = data / f"rejects-{run_id}.jsonl"
    logs: list[EventLog] = []

    files = list_log_files(list(new_logs)) if new_logs else []
    fresh: list[Path] = []
    for f in files:
        digest = sha256_file(f)
        if digest in seen_hashes:
            out.skipped.append(str(f))
            continue
        seen_hashes.add(digest)
        fresh.append(f)
        out.sources.append({"kind": "log", "path": str(f), "sha256": digest})
    if fresh:
        log, summary = read_events(fresh, rejects_path=rejects, event_types=event_types)
        logs.append(log)
        _add(summary, out)
        out.accepted_by_source["logs"] += summary.accepted
        if summary.rejected:
            out.rejects_path = str(rejects)
    if database_url:
        rows, last_id = read_database_events(database_url, out.last_event_id)
        _read_rows(rows, "db", "events", data, run_id, logs, out, event_types)
        out.sources.append(
            {
                "kind": "database",
                "url": _redact(database_url),
                "first_id": out.last_event_id + 1,
                "last_id": last_id,
                "rows": len(rows),
            }
        )
        out.last_event_id = last_id
        rows, last_id, left_out = read_database_engagements(database_url, out.last_engagement_id)
        _read_rows(rows, "engagements", "engagements", data, run_id, logs, out, event_types)
        out.sources.append(
            {
                "kind": "database-engagements",
                "url": _redact(database_url),
                "first_id": out.last_engagement_id + 1,
                "last_id": last_id,
                "rows": left_out["rows"],
                "left_out": {k: v for k, v in left_out.items() if k != "rows"},
            }
        )
        out.engagements_left_out = {k: v for k, v in left_out.items() if k != "rows"}
        out.last_engagement_id = last_id
    if fresh and not out.rejected:
        rejects.unlink(missing_ok=True)
    out.log = concat_logs(logs)
    if not out.sources:
        return out
    name = f"batch-{run_id}.jsonl"
    if len(out.log):
        write_bytes_atomic(data / name, log_to_jsonl(out.log))
        out.batch_file = data / name
    manifest["batches"].append(
        {
            "file": name,
            "run_id": run_id,
            "created_at": utc_now(),
            "events": len(out.log),
            "rejected": out.rejected,
            "sources": out.sources,
        }
    )
    manifest["last_event_id"] = out.last_event_id
    manifest["last_engagement_id"] = out.last_engagement_id
    write_json_atomic(data / MANIFEST, manifest)  # the commit point of the ingestion
    return out


def _read_rows(
    rows: list[dict[str, Any]],
    tag: str,
    source: str,
    data: Path,
    run_id: str,
    logs: list[EventLog],
    out: NewData,
    event_types: Collection[str] | None,
) -> None:
    """Database rows through the JSONL reader (the same validation as a log), added to ``logs`` and ``out``."""
    if not rows:
        return
    tmp = data / f"{TMP_PREFIX}{tag}-{run_id}.jsonl"
    tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    db_rejects = data / f"rejects-{tag}-{run_id}.jsonl"
    try:
        log, summary = read_events(tmp, rejects_path=db_rejects, event_types=event_types)
    finally:
        tmp.unlink(missing_ok=True)
    logs.append(log)
    _add(summary, out)
    out.accepted_by_source[source] += summary.accepted
    if summary.rejected:
        out.rejects_path = ", ".join(p for p in (out.rejects_path, str(db_rejects)) if p)
    else:
        db_rejects.unlink(missing_ok=True)


def _redact(url: str) -> str:
    """No passwords in reports: ``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def new_run_id() -> str:
    return utc_now().replace("-", "").replace(":", "") + "-" + uuid.uuid4().hex[:6]
