"""Read JSONL interaction logs (plain, gzipped, or a directory of them) into a columnar ``EventLog``.

Every line is accounted for: accepted, counted as blank, or rejected with file, line number and
reason. Rejected lines go to a rejects JSONL file (when given) and into the summary counts;
``strict=True`` stops at the first bad line with an ``IngestError`` instead.

Files are read in blocks of about 4 MiB, parsed in two threads (NumPy releases the GIL) and taken in
file order. Lines in a common layout are checked for the whole block at once (``app.data.eventblocks``,
no Python object per line); every other line (blank, unusual layout, bad) goes through the per-line
check, ``orjson.loads`` + ``check_event``, which alone rejects a line, so verdicts, reasons and line
numbers are those of the per-line reader (``_read_events_per_line``, kept for the tests and
``benchmarks/ingest.py``). The string columns come back as codes into their distinct values
(``EventLog.coded``); their object arrays are made when first asked for.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import orjson

from app.data.eventblocks import PAD, STRING_COLUMNS, Block, BlockParser
from app.data.schema import KNOWN_EVENT_TYPES, BadEvent, check_event
from app.data.types import Coded, EventLog
from app.files import atomic_file

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
PathLike = str | os.PathLike[str]
BLOCK_BYTES = 1 << 22  # lines are checked a block at a time: ~4 MiB makes NumPy's per-call cost small
PROGRESS_MIN_BYTES = 64 << 20  # the automatic progress bar is for inputs at least this large
PARSE_THREADS = max(1, min(2, len(os.sched_getaffinity(0))))  # more: the columns' locks are the limit
PARSE_AHEAD = 2 * PARSE_THREADS  # blocks started and not yet taken (a few MiB)


class IngestError(ValueError):
    """A bad input line (strict mode) or an unreadable input; says where and why."""

    def __init__(self, file: str, line: int, reason: str):
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass
class IngestSummary:
    """What happened to every input line."""

    files: list[str] = field(default_factory=list)
    lines: int = 0  # every line read, blank ones included
    accepted: int = 0
    rejected: int = 0
    blank: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> count
    rejects_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "blank": self.blank,
            "reasons": dict(self.reasons),
            "rejects_path": self.rejects_path,
        }

    def describe(self) -> str:
        text = f"{self.lines} lines in {len(self.files)} file(s): {self.accepted} accepted, {self.rejected} rejected"
        if self.blank:
            text += f", {self.blank} blank"
        if self.reasons:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items())) + ")"
        if self.rejects_path and self.rejected:
            text += f"; rejected lines in {self.rejects_path}"
        return text


def list_log_files(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Expand files and directories (their ``.jsonl``/``.jsonl.gz`` files, sorted by name)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(LOG_SUFFIXES))
            if not found:
                raise FileNotFoundError(f"{p}: directory holds no {', '.join(LOG_SUFFIXES)} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return files


def open_maybe_gzip(path: Path) -> IO[bytes]:
    """Binary reader; gzip is detected from the magic bytes, so the suffix does not matter."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")


BOM = b"\xef\xbb\xbf"


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line); a corrupt or truncated gzip raises ``IngestError`` (strict or not).

    A UTF-8 byte-order mark (editors on Windows write one) is dropped from the first line, and lines
    ended by CR alone (old Mac files) are split like any other: a line holding a CR that is not its
    line ending is such a run of lines."""
    lineno = 0
    with open_maybe_gzip(path) as fh:
        try:
            for n, raw in enumerate(fh, start=1):
                if n == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                body = raw.rstrip(b"\r\n")
                if b"\r" in body:
                    for part in body.split(b"\r"):
                        lineno += 1
                        yield lineno, part
                    continue
                lineno += 1
                yield lineno, raw
        except (OSError, EOFError) as exc:
            raise IngestError(str(path), lineno + 1, f"cannot read file: {exc}") from None


class _ReadError(Exception):
    """A file stopped being readable (a corrupt or truncated gzip) after the lines before it were given."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _blocks(path: Path, advance: Callable[[int], None]) -> Iterator[tuple[bytes | bytearray, bool]]:
    """(block of whole lines each ending in "\\n", whether the last one had its own "\\n") in file order.

    The BOM is dropped as in ``_lines``. A read error raises ``_ReadError`` once the complete lines read
    before it have been given (as the per-line reader gives them), so the error's line number matches.
    ``advance(n)``: n more bytes of the file (compressed bytes for gzip) were read."""
    with open_maybe_gzip(path) as fh:
        if not isinstance(fh, gzip.GzipFile):
            yield from _plain_blocks(fh, advance)
            return
        source = fh.fileobj or fh  # a gzip file's progress is its compressed position
        done = 0
        pending = bytearray()
        at_start = True
        while True:
            try:
                chunk = fh.read1(BLOCK_BYTES)
            except (OSError, EOFError) as exc:
                cut = pending.rfind(b"\n") + 1
                if cut:
                    yield bytes(pending[:cut]), True
                raise _ReadError(exc) from None
            pending += chunk
            position = source.tell()
            advance(position - done)
            done = position
            if at_start and (len(pending) >= len(BOM) or not chunk):
                if pending.startswith(BOM):
                    del pending[: len(BOM)]
                at_start = False
            if not chunk:
                if pending:
                    cut = pending.rfind(b"\n") + 1
                    if cut:
                        yield bytes(pending[:cut]), True
                    if cut < len(pending):
                        yield bytes(pending[cut:]) + b"\n", False  # a last line without "\n"
                return
            if len(pending) >= BLOCK_BYTES:
                cut = pending.rfind(b"\n") + 1
                if cut:
                    yield bytes(pending[:cut]), True
                    del pending[:cut]


def _plain_blocks(fh: IO[bytes], advance: Callable[[int], None]) -> Iterator[tuple[bytearray, bool]]:
    """``_blocks`` of an uncompressed file: each block is read straight into a buffer of its own (the
    parser threads keep it), after the part line the last block left over."""
    tail = b""
    at_start = True
    while True:
        block = bytearray(BLOCK_BYTES + len(tail))
        block[: len(tail)] = tail
        try:
            got = fh.readinto(memoryview(block)[len(tail) :])
        except OSError as exc:
            raise _ReadError(exc) from None
        advance(got)
        del block[len(tail) + got :]
        if at_start:
            if block.startswith(BOM):
                del block[: len(BOM)]
            at_start = False
        if not got:
            if block:
                yield block + b"\n", False  # a last line without "\n"
            return
        cut = block.rfind(b"\n") + 1
        tail = bytes(block[cut:])
        if cut:
            del block[cut:]
            yield block, True


def _cr_lines(block: bytes, last_has_newline: bool) -> Iterator[bytes]:
    """The raw lines of a block holding a "\\r" that is not part of "\\r\\n", split as ``_lines`` splits."""
    pieces = block.split(b"\n")[:-1]
    for i, piece in enumerate(pieces):
        raw = piece + b"\n" if last_has_newline or i < len(pieces) - 1 else piece
        body = raw.rstrip(b"\r\n")
        if b"\r" in body:
            yield from body.split(b"\r")
        else:
            yield raw


def _expected_lines(files: list[Path]) -> int:
    """A generous guess of the line count, the columns' first capacity: 40 bytes a line (8x that for
    gzip), at most 32M lines (beyond that the columns grow)."""
    total = 0
    for f in files:
        with f.open("rb") as fh:
            total += f.stat().st_size * (8 if fh.read(2) == b"\x1f\x8b" else 1)
    return min(total // 40 + 1024, 32 << 20)


def _check_line(raw: bytes, types: Collection[str], now: float) -> tuple[str, str, str, int, Any, Any, str]:
    """The per-line check: ``orjson.loads`` + ``check_event``; ``BadEvent`` says why a line is rejected."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadEvent("invalid_json", f"invalid JSON: {exc}") from None
    return check_event(obj, types, now)


def _progress_bar(files: list[Path], progress: bool | None) -> AbstractContextManager[Any]:
    """A tqdm bar over the input bytes: ``progress=None`` shows it for large inputs when stderr is a
    terminal, ``True`` always, ``False`` never."""
    if progress is False:
        return nullcontext(None)
    total = sum(f.stat().st_size for f in files)
    if progress is None and total < PROGRESS_MIN_BYTES:
        return nullcontext(None)
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="reading events",
        leave=False,
        disable=None if progress is None else False,
    )


@functools.cache
def _raise_malloc_thresholds() -> None:
    """Allocate and free one 16 MiB buffer, once per process, before the first read.

    glibc's malloc hands freed heap memory back to the OS above a threshold that only grows once a large
    block it had mapped is freed; until then every block's few MiB of NumPy temporaries are unmapped and
    faulted in again, which made the first read in a process ~15% slower than the next. With another
    allocator this is just an allocation."""
    np.empty(16 << 20, np.uint8)


def read_events(
    paths: PathLike | Iterable[PathLike],
    *,
    strict: bool = False,
    rejects_path: PathLike | None = None,
    event_types: Collection[str] | None = None,
    progress: bool | None = None,
) -> tuple[EventLog, IngestSummary]:
    """Parse and validate interaction logs.

    ``event_types``: accepted event names (default: the keys of ``DEFAULT_EVENT_WEIGHTS``).
    ``rejects_path``: JSONL file receiving ``{file, line, reason, code, raw}`` per rejected line
    (replaced atomically, not appended to; empty when every line was accepted).
    ``progress``: a progress bar on stderr (None: for inputs over 64 MiB when stderr is a terminal).
    """
    types = frozenset(event_types) if event_types is not None else KNOWN_EVENT_TYPES
    files = list_log_files(paths)
    summary = IngestSummary(files=[str(f) for f in files])
    _raise_malloc_thresholds()
    # Rejects stream into a temporary file that replaces ``rejects_path`` only once every input is read
    # (empty when nothing was rejected, which replaces a stale file); on an error the old file stays.
    with (
        atomic_file(rejects_path) if rejects_path is not None else nullcontext() as rejects_fh,
        _progress_bar(files, progress) as bar,
    ):
        ingest = _Ingest(types, time.time(), strict, rejects_fh, summary, _expected_lines(files))
        advance = bar.update if bar is not None else (lambda n: None)
        # Blocks are parsed in worker threads (NumPy releases the GIL) while this thread reads the file and
        # takes the parsed blocks in file order: line numbers, rejects and columns stay in order.
        pool = ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="read-events")
        try:
            for path in files:
                name, lineno = str(path), 0  # lines of this file handed on so far
                pending: deque[_Parsing] = deque()
                try:
                    for block, last_has_newline in _blocks(path, advance):
                        pending.append(ingest.start(pool, block, last_has_newline))
                        if len(pending) > PARSE_AHEAD:
                            lineno = ingest.finish(pending.popleft(), name, lineno)
                except _ReadError as exc:
                    while pending:
                        lineno = ingest.finish(pending.popleft(), name, lineno)
                    raise IngestError(name, lineno + 1, f"cannot read file: {exc.cause}") from None
                while pending:
                    lineno = ingest.finish(pending.popleft(), name, lineno)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    if rejects_path is not None:
        summary.rejects_path = str(rejects_path)
    event_log = ingest.event_log()
    summary.accepted = len(event_log)
    summary.reasons = dict(ingest.reasons)
    if summary.rejected:
        log.warning("ingest: %s", summary.describe())
    return event_log, summary


Values = tuple[str, str, str, int, Any, Any, str]  # check_event's: user, item, event, ts, rating, weight, platform


class _Parsing(NamedTuple):
    """A block handed to the parser threads: its bytes, and the parse under way (None: CR-only lines)."""

    block: bytes | bytearray
    last_has_newline: bool
    found: Future[Block] | None


DTYPES = {"user_id": np.int32, "item_id": np.int32, "event": np.int32, "platform": np.int32}
DTYPES |= {"ts": np.int64, "rating": np.float32, "weight": np.float32}


class _Columns:
    """Growable typed columns (~32 bytes per event). The capacity is a generous guess from the input
    size: pages never written are never resident, and appending copies nothing until the guess is
    passed; the event log's arrays are views of these."""

    def __init__(self, capacity: int):
        self.n = 0
        self.arrays = {c: np.empty(max(capacity, 1024), t) for c, t in DTYPES.items()}

    def append(self, values: dict[str, np.ndarray], keep: np.ndarray | None = None) -> None:
        k = int(np.count_nonzero(keep)) if keep is not None else len(values["ts"])
        if self.n + k > self.arrays["ts"].size:
            size = max(self.n + k, 2 * self.arrays["ts"].size)
            for column, old in self.arrays.items():
                self.arrays[column] = np.empty(size, old.dtype)
                self.arrays[column][: self.n] = old[: self.n]
        whole = keep is None or k == len(keep)
        for column, column_array in self.arrays.items():
            out = column_array[self.n : self.n + k]
            if whole:  # the common case: every line of the block was accepted
                out[:] = values[column]
            else:
                np.compress(keep, values[column], out=out)
        self.n += k

    def pop(self, column: str) -> np.ndarray:
        return self.arrays.pop(column)[: self.n]


class _Ingest:
    """The state of one ``read_events`` call: counts, rejects, and the columns gathered block by block
    (typed arrays, ~32 bytes per event, joined at the end)."""

    def __init__(
        self,
        types: frozenset[str],
        now: float,
        strict: bool,
        rejects_fh: IO[bytes] | None,
        summary: IngestSummary,
        expected_lines: int,
    ):
        self.types, self.now, self.strict, self.rejects_fh, self.summary = types, now, strict, rejects_fh, summary
        self.reasons: Counter[str] = Counter()
        self.parser = BlockParser(types, now)
        self.columns = self.parser.columns  # the per-line path shares their codes: equal strings, one code
        self.out = _Columns(expected_lines)

    def line(self, raw: bytes, name: str, number: int) -> Values | None:
        """The per-line path: the line's values, or None (blank, or rejected and recorded)."""
        if not raw.strip():
            self.summary.blank += 1
            return None
        try:
            return _check_line(raw, self.types, self.now)
        except BadEvent as exc:
            if self.strict:
                raise IngestError(name, number, f"{exc.code}: {exc.message}") from None
            self.reasons[exc.code] += 1
            self.summary.rejected += 1
            if self.rejects_fh is not None:
                row = {
                    "file": name,
                    "line": number,
                    "code": exc.code,
                    "reason": exc.message,
                    "raw": raw.decode("utf-8", "replace").rstrip("\r\n"),
                }
                self.rejects_fh.write(orjson.dumps(row) + b"\n")
            return None

    def start(self, pool: Executor, block: bytes | bytearray, last_has_newline: bool) -> _Parsing:
        """Hand one block to the parser threads (a block with CR-only line endings is read line by
        line in ``finish``)."""
        crlf = b"\r" in block
        cr_only = crlf and block.count(b"\r") != block.count(b"\r\n")
        return _Parsing(block, last_has_newline, None if cr_only else pool.submit(self.parser.parse, block, crlf))

    def finish(self, parsing: _Parsing, name: str, lineno: int) -> int:
        """Take one started block (after line ``lineno`` of file ``name``), in file order: the per-line
        path for the lines the parser left, then the columns. Returns the last line number."""
        block, last_has_newline = parsing.block, parsing.last_has_newline
        if parsing.found is None:  # CR-only line endings: one line at a time
            rows = []
            for raw in _cr_lines(bytes(block), last_has_newline):
                lineno += 1
                self.summary.lines += 1
                values = self.line(raw, name, lineno)
                if values is not None:
                    rows.append(values)
            self._append_rows(rows)
            return lineno
        found = parsing.found.result()
        n = found.starts.size
        keep = found.fast.copy()
        for r in np.flatnonzero(~found.fast).tolist():
            # the raw line as _lines gives it: with its "\n" (a last line without one, without)
            end = int(found.newlines[r]) - PAD + (last_has_newline or r < n - 1)
            values = self.line(bytes(block[int(found.starts[r]) - PAD : end]), name, lineno + r + 1)
            if values is not None:
                keep[r] = True
                self._set_row(found, r, values)
        self.summary.lines += n
        self.out.append({**found.codes, "ts": found.ts, "rating": found.rating, "weight": found.weight}, keep)
        return lineno + n

    def _set_row(self, found: Block, r: int, values: Values) -> None:
        user_id, item_id, event, ts, rating, weight, platform = values
        for column, text in zip(STRING_COLUMNS, (user_id, item_id, event, platform), strict=True):
            found.codes[column][r] = self.columns[column].code(text)
        found.ts[r] = ts
        with np.errstate(over="ignore"):  # float32 as array("f") stores it: 1e300 becomes inf, silently
            found.rating[r] = np.nan if rating is None else rating
            found.weight[r] = np.nan if weight is None else weight

    def _append_rows(self, rows: list[Values]) -> None:
        if not rows:
            return
        user_id, item_id, event, ts, rating, weight, platform = zip(*rows, strict=True)
        values = {
            column: np.array([self.columns[column].code(t) for t in texts], np.int32)
            for column, texts in zip(STRING_COLUMNS, (user_id, item_id, event, platform), strict=True)
        }
        values["ts"] = np.array(ts, np.int64)
        with np.errstate(over="ignore"):
            values["rating"] = np.array([np.nan if r is None else r for r in rating], np.float32)
            values["weight"] = np.array([np.nan if w is None else w for w in weight], np.float32)
        self.out.append(values)

    def event_log(self) -> EventLog:
        """The columns as an ``EventLog``, its string columns as codes (``Coded``)."""
        out: dict[str, Any] = {column: self.out.pop(column) for column in ("ts", "rating", "weight")}
        for column in STRING_COLUMNS:
            names = np.empty(len(self.columns[column].codes), dtype=object)
            names[:] = list(self.columns[column].codes)
            out[column] = Coded(self.out.pop(column), names)
        return EventLog(**out)


def _read_events_per_line(
    paths: PathLike | Iterable[PathLike],
    *,
    strict: bool = False,
    rejects_path: PathLike | None = None,
    event_types: Collection[str] | None = None,
) -> tuple[EventLog, IngestSummary]:
    """``read_events`` one line at a time (the reader before the block fast path): the reference the
    differential tests and the ingestion benchmark compare with."""
    types = frozenset(event_types) if event_types is not None else KNOWN_EVENT_TYPES
    files = list_log_files(paths)
    summary = IngestSummary(files=[str(f) for f in files])
    reasons: Counter[str] = Counter()
    # Strings are interned into small code tables and the columns kept in typed arrays, so memory
    # per event stays ~30 bytes (a 25M-line log fits) instead of a Python object per field.
    tables: tuple[dict[str, int], ...] = ({}, {}, {}, {})  # user, item, event, platform
    codes = tuple(array("i") for _ in tables)
    tss = array("q")
    ratings = array("f")
    weights = array("f")
    nan = float("nan")
    now = time.time()
    loads = orjson.loads
    # Rejects stream into a temporary file that replaces ``rejects_path`` only once every input is read
    # (empty when nothing was rejected, which replaces a stale file); on an error the old file stays.
    with atomic_file(rejects_path) if rejects_path is not None else nullcontext() as rejects_fh:
        for path in files:
            name = str(path)
            for lineno, raw in _lines(path):
                summary.lines += 1
                if not raw.strip():
                    summary.blank += 1
                    continue
                try:
                    try:
                        obj = loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise BadEvent("invalid_json", f"invalid JSON: {exc}") from None
                    user_id, item_id, event, ts, rating, weight, platform = check_event(obj, types, now)
                except BadEvent as exc:
                    if strict:
                        raise IngestError(name, lineno, f"{exc.code}: {exc.message}") from None
                    reasons[exc.code] += 1
                    summary.rejected += 1
                    if rejects_fh is not None:
                        rejects_fh.write(
                            orjson.dumps(
                                {
                                    "file": name,
                                    "line": lineno,
                                    "code": exc.code,
                                    "reason": exc.message,
                                    "raw": raw.decode("utf-8", "replace").rstrip("\r\n"),
                                }
                            )
                            + b"\n"
                        )
                    continue
                for table, column, value in zip(tables, codes, (user_id, item_id, event, platform), strict=False):
                    code = table.get(value)
                    if code is None:
                        code = table[value] = len(table)
                    column.append(code)
                tss.append(ts)
                ratings.append(nan if rating is None else rating)
                weights.append(nan if weight is None else weight)
    if rejects_path is not None:
        summary.rejects_path = str(rejects_path)
    summary.accepted = len(tss)
    summary.reasons = dict(reasons)
    if summary.rejected:
        log.warning("ingest: %s", summary.describe())
    user_id, item_id, event, platform = (_decode(t, c) for t, c in zip(tables, codes, strict=False))
    event_log = EventLog(
        user_id=user_id,
        item_id=item_id,
        event=event,
        ts=np.frombuffer(tss, dtype=np.int64).copy(),
        rating=np.frombuffer(ratings, dtype=np.float32).copy(),
        weight=np.frombuffer(weights, dtype=np.float32).copy(),
        platform=platform,
    )
    return event_log, summary


def _decode(table: dict[str, int], codes: array) -> np.ndarray:
    """Object array of strings from codes; equal strings share one object."""
    names = np.empty(len(table), dtype=object)
    names[:] = list(table)
    return names[np.frombuffer(codes, dtype=np.int32)] if len(codes) else np.empty(0, dtype=object)


def main(argv: list[str] | None = None) -> int:
    """``python -m app.data.events PATH... [--strict] [--rejects FILE]``: check logs before training.

    Exit code 0 when every line is good, 1 when some were rejected, 2 on a strict-mode stop or
    unreadable input.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m app.data.events", description="Validate JSONL interaction logs.")
    parser.add_argument("paths", nargs="+", help="JSONL / JSONL.gz files or directories of them")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad line")
    parser.add_argument("--rejects", help="write rejected lines (file, line, reason, raw) to this JSONL file")
    args = parser.parse_args(argv)
    try:
        _, summary = read_events(args.paths, strict=args.strict, rejects_path=args.rejects)
    except (IngestError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 1 if summary.rejected else 0


if __name__ == "__main__":
    raise SystemExit(main())
