"""Time the data stages of training: reading a log, aggregating it into positives, indexing them, and the
per-event arrays the model directory stores (each item's average rating, what each user has seen).

    PYTHONPATH=backend python benchmarks/aggregate.py --file /tmp/ml20m-like/interactions.jsonl

Runs ``read_events``, ``to_positives`` and ``build_dataset`` once each in this process, as
``load_dataset`` does, then ``average_ratings`` and ``seen_matrix`` as the training CLI does, and
prints the seconds of each and the peak RSS after the first three and after all five. Write a log
first with ``python -m app.data.synthetic --events 20000000 --out /tmp/ml20m-like``. To compare
another version of the code, point ``PYTHONPATH`` at its ``backend`` (a ``git worktree``).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from app.data.aggregate import to_positives
from app.data.dataset import build_dataset
from app.data.events import read_events
from app.data.features import average_ratings, seen_matrix


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--file", type=Path, required=True, help="a JSONL interaction log")
    args = p.parse_args(argv)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.file}")
    t0 = time.perf_counter()
    log, _ = read_events(args.file, progress=False)
    t1 = time.perf_counter()
    positives = to_positives(log)
    t2 = time.perf_counter()
    dataset = build_dataset(positives)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    average_ratings(log, dataset)
    t4 = time.perf_counter()
    seen = seen_matrix(log, dataset)
    t5 = time.perf_counter()
    print(f"read_events     {t1 - t0:6.1f} s  {len(log):,} events")
    print(f"to_positives    {t2 - t1:6.1f} s  {len(positives):,} positives")
    print(f"build_dataset   {t3 - t2:6.1f} s  {dataset.n_users:,} users x {dataset.n_items:,} items")
    print(f"peak RSS {peak:,.0f} MB")
    print(f"average_ratings {t4 - t3:6.1f} s")
    print(f"seen_matrix     {t5 - t4:6.1f} s  {seen.nnz:,} (user, item) pairs seen")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
