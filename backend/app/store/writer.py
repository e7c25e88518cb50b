"""Batched impression writer: requests append rows to a buffer, one background thread inserts them.

Why: a commit per recommendation would put a disk write on every request's path. The thread wakes
every ``flush_seconds``, or as soon as ``batch_size`` rows are waiting, and writes the rows waiting
then, in batches. Appending does not wake the thread (a ``queue.Queue`` would, once per row: the
thread switches cost more server CPU than the inserts). Rows not yet written stay visible through
``pending()`` by key (an engagement may arrive before its impression is on disk); ``flush()`` waits
until everything appended so far is written. Impressions are telemetry: on a process kill the last
``flush_seconds`` of them can be lost, never an engagement or event (those are written synchronously).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class ImpressionWriter:
    def __init__(
        self,
        write_batch: Callable[[list[tuple]], None],
        *,
        batch_size: int = 1024,
        flush_seconds: float = 0.2,
        max_queue: int = 100_000,
        retries: int = 3,
    ):
        self._write_batch = write_batch
        self.batch_size = max(1, int(batch_size))
        self.flush_seconds = max(0.001, float(flush_seconds))
        self.max_queue = max_queue
        self.retries = retries
        # deque.append/popleft and single dict operations are atomic under the GIL: no lock on the hot path.
        self._rows: deque[tuple[str, tuple]] = deque()
        self._markers: deque[threading.Event] = deque()
        self._pending: dict[str, tuple] = {}
        self._wake = threading.Event()
        self._stop = False
        self._write_lock = threading.Lock()  # one writer at a time (the thread, or an inline drain)
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="impression-writer", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def put(self, key: str, row: tuple) -> bool:
        """Buffer one row, ready to insert (never blocks); False when the buffer is full and it was dropped."""
        if len(self._rows) >= self.max_queue:
            self.dropped += 1
            log.warning("impression buffer full (%d rows): impression %s dropped", self.max_queue, key)
            return False
        self._pending[key] = row
        self._rows.append((key, row))
        if len(self._rows) >= self.batch_size:
            self._wake.set()
        return True

    def pending(self, key: str) -> tuple | None:
        return self._pending.get(key)

    def backlog(self) -> int:
        return len(self._pending)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every row appended before this call is written (True) or ``timeout`` passes."""
        if not self.running:
            self._drain()
            return True
        done = threading.Event()
        self._markers.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything buffered, then stop the thread."""
        if self._thread is not None:
            self._stop = True
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None
        self._drain()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stop
            self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        """Write the rows buffered when the drain starts, then release the flush markers waiting for them.

        Only those rows: draining until the buffer is empty chased the rows that arrived during each
        write, so under load the thread wrote a few rows per transaction, back to back, and took the
        GIL from the request thread thousands of times a second (server CPU per request +60%)."""
        with self._write_lock:
            markers = []
            while self._markers:  # markers first: every row appended before a marker is in ``_rows`` now
                markers.append(self._markers.popleft())
            remaining = len(self._rows)
            while remaining > 0:
                batch = [self._rows.popleft() for _ in range(min(remaining, self.batch_size))]
                remaining -= len(batch)
                self._write(batch)
            for m in markers:
                m.set()

    def _write(self, rows: list[tuple[str, tuple]]) -> None:
        for attempt in range(self.retries + 1):
            try:
                self._write_batch([r for _, r in rows])
                self.written += len(rows)
                break
            except Exception as exc:
                if attempt < self.retries:
                    time.sleep(0.05 * 2**attempt)
                    continue
                log.error("impression batch of %d failed (%s); writing row by row", len(rows), exc)
                self._write_one_by_one(rows)
        for key, _ in rows:
            self._pending.pop(key, None)

    def _write_one_by_one(self, rows: list[tuple[str, tuple]]) -> None:
        """Isolate bad rows (e.g. a duplicate recset_id): write the good ones, drop and log the rest."""
        for key, r in rows:
            try:
                self._write_batch([r])
                self.written += 1
            except Exception as exc:
                self.dropped += 1
                log.error("impression %s dropped: %s", key, exc)
