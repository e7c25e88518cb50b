"""Impression writer cost per row, and how long it holds the GIL, as ``rec_impressions`` grows.

    PYTHONPATH=backend python benchmarks/impression_writes.py              # 140,000 rows, batches of 1,000
    PYTHONPATH=backend python benchmarks/impression_writes.py --rows 56000

Rows are built by ``app.store.impressions.impression_row`` (as a request builds them) and each batch is written the way
the writer thread writes it (``db.insert_rows`` in one transaction, SQLite in WAL mode) into a fresh
database in a scratch directory: once with the current schema, once with the ``(user_id, ts)`` index
that ``schema.DROPPED_INDEXES`` removed. Users are drawn across 943 ids, as ML-100K's are.

Prints, for each fifth of the rows, the CPU microseconds per row (a growing figure means every row
lands on a random B-tree page). And, from a second thread that stands in for the request thread
(switch interval 0.1 ms, so it gets the GIL back as soon as the writer lets go of it), the time that
thread could not run per 1,000 rows and the longest such wait: what a request waits for the writer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from app.store import schema as t
from app.store.db import create_db_engine, create_schema, insert_rows
from app.store.ids import new_recset_id
from app.store.impressions import impression_row

#: Gaps in the stand-in request thread's loop longer than this count as waiting for the GIL.
GAP_S = 0.0003


def rows(n: int, start: int) -> list[tuple]:
    return [
        impression_row(
            new_recset_id(),
            str((start + i) * 7919 % 943),
            "/recommendations",
            "nn",
            "bench",
            [str(j) for j in range(10)],
            [round(1.0 / (j + 1), 6) for j in range(10)],
            latency_ms=0.3,
        )
        for i in range(n)
    ]


class GilWatch:
    """A thread that loops on the clock and records how long it was kept from running."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            if now - last > GAP_S:
                self.gaps.append(now - last)
            last = now

    def __enter__(self) -> GilWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(path: Path, old_index: bool, n_rows: int, batch: int) -> tuple[list[float], float, float]:
    engine = create_db_engine(f"sqlite:///{path}")
    create_schema(engine)
    if old_index:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX ix_rec_impressions_user_ts ON rec_impressions (user_id, ts)"))
    fifth = max(batch, n_rows // 5)
    out, cpu, done, waited, longest = [], 0.0, 0, 0.0, 0.0
    while done < n_rows:
        chunk = rows(min(batch, n_rows - done), done)
        with GilWatch() as watch:
            started = time.thread_time()
            with engine.begin() as conn:
                insert_rows(conn, t.rec_impressions, chunk)
            cpu += time.thread_time() - started
        waited += sum(watch.gaps)
        longest = max([longest, *watch.gaps])
        done += len(chunk)
        if done % fifth < batch or done == n_rows:
            out.append(cpu / fifth * 1e6)
            cpu = 0.0
    engine.dispose()
    return out, waited / n_rows * 1e6, longest  # ms per 1,000 rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=140_000)
    p.add_argument("--batch", type=int, default=1000, help="rows per transaction (~0.2 s of a busy server)")
    args = p.parse_args()
    sys.setswitchinterval(0.0001)
    with tempfile.TemporaryDirectory() as tmp:
        for label, old in (("current schema", False), ("with (user_id, ts) index", True)):
            per_row, waited_ms, longest = measure(Path(tmp) / f"{old}.sqlite", old, args.rows, args.batch)
            print(
                f"{label:26s} writer CPU us/row per fifth of {args.rows:,} rows: "
                + " ".join(f"{v:5.1f}" for v in per_row)
                + f" | GIL held {waited_ms:.2f} ms per 1,000 rows, longest {longest * 1000:.2f} ms"
            )


if __name__ == "__main__":
    main()
