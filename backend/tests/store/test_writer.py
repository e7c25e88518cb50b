"""The batched impression writer: never blocks a request, survives a bad row, drains what it found."""

from __future__ import annotations

import threading
import time

from app.store import Store
from app.store.writer import ImpressionWriter
from tests.store import scenario as sc


def test_writer_survives_a_bad_row_and_keeps_going(sqlite_url: str) -> None:
    s = Store.from_url(sqlite_url, batch_size=10, flush_seconds=0.01).start()
    try:
        rid = sc.show_list(s)
        s.flush()
        s.writer.retries = 0
        s.log_impression(
            rid, "u1", "/recommendations", "nn", "v1", ["a"], [1.0]
        )  # same recset_id again: the batch fails, the row is dropped
        good = sc.show_list(s)
        s.flush()
        assert s.get_impression(good) is not None and s.writer.dropped == 1 and s.writer.running
    finally:
        s.close()


def test_log_impression_does_not_block() -> None:
    gate = threading.Event()
    w = ImpressionWriter(lambda rows: gate.wait(5), batch_size=1, flush_seconds=0)
    w.start()
    started = time.perf_counter()
    for n in range(1000):
        w.put(str(n), (n,))
    assert time.perf_counter() - started < 0.5  # the writer is stuck; puts still return at once
    assert w.backlog() == 1000
    gate.set()
    w.close()
    assert w.backlog() == 0 and w.written == 1000


def test_a_drain_writes_the_rows_it_found_not_those_added_meanwhile() -> None:
    """Chasing the rows that arrive during a write made a busy server write a few rows per transaction."""
    batches: list[int] = []

    def write(rows: list[tuple]) -> None:
        batches.append(len(rows))
        if len(batches) == 1:
            for n in range(3):  # requests keep logging while the batch is written
                w.put(f"late{n}", (n,))

    w = ImpressionWriter(write, batch_size=100)
    for n in range(5):
        w.put(str(n), (n,))
    assert w.flush()  # not started: drains inline
    assert batches == [5] and w.backlog() == 3
    w.close()
    assert batches == [5, 3] and w.backlog() == 0
