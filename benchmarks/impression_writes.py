"""Impression writer cost per row as ``rec_impressions`` grows, with and without the old (user_id, ts) index.

    PYTHONPATH=backend python benchmarks/impression_writes.py              # 140,000 rows, batches of 700
    PYTHONPATH=backend python benchmarks/impression_writes.py --rows 56000

Each batch is written the way the service's writer thread writes it (``db.insert_rows`` in one
transaction, SQLite in WAL mode) into a fresh database in a scratch directory: once with the
current schema, once with the ``(user_id, ts)`` index that ``schema.DROPPED_INDEXES`` removed. Users
are drawn across 943 ids, as ML-100K's are. Prints CPU microseconds per row for each fifth of the
rows; a growing figure means every row lands on a random B-tree page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from app.store import schema as t  # noqa: E402
from app.store.db import create_schema, insert_rows, make_engine  # noqa: E402
from app.store.ids import new_recset_id  # noqa: E402


def rows(n: int, start: int) -> list[dict]:
    return [
        {
            "recset_id": new_recset_id(),
            "user_id": str((start + i) * 7919 % 943),
            "endpoint": "/recommendations",
            "engine": "nn",
            "model_version": "bench",
            "item_ids": [str(j) for j in range(10)],
            "scores": [round(1.0 / (j + 1), 6) for j in range(10)],
            "platform": None,
            "is_fallback": False,
            "latency_ms": 0.3,
            "ts": time.time(),
        }
        for i in range(n)
    ]


def measure(path: Path, old_index: bool, n_rows: int, batch: int) -> list[float]:
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    if old_index:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX ix_rec_impressions_user_ts ON rec_impressions (user_id, ts)"))
    fifth = max(batch, n_rows // 5)
    out, cpu, done = [], 0.0, 0
    while done < n_rows:
        chunk = rows(min(batch, n_rows - done), done)
        started = time.process_time()
        with engine.begin() as conn:
            insert_rows(conn, t.rec_impressions, chunk)
        cpu += time.process_time() - started
        done += len(chunk)
        if done % fifth < batch or done == n_rows:
            out.append(cpu / fifth * 1e6)
            cpu = 0.0
    engine.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=140_000)
    p.add_argument("--batch", type=int, default=700, help="rows per transaction (~0.2 s of a busy server)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, old in (("current schema", False), ("with (user_id, ts) index", True)):
            per_row = measure(Path(tmp) / f"{old}.sqlite", old, args.rows, args.batch)
            print(f"{label:26s} CPU us/row per fifth of {args.rows:,} rows: " + " ".join(f"{v:5.1f}" for v in per_row))


if __name__ == "__main__":
    main()
