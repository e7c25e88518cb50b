"""Read JSONL interaction logs (plain, gzipped, or a directory of them) into a columnar ``EventLog``.

Every line is accounted for: accepted, counted as blank, or rejected with file, line number and
reason. Rejected lines go to a rejects JSONL file (when given) and into the summary counts;
``strict=True`` stops at the first bad line with an ``IngestError`` instead.
"""

from __future__ import annotations

import gzip
import logging
import os
import time
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from app.data.schema import KNOWN_EVENT_TYPES, BadEvent, check_event
from app.data.types import EventLog
from app.files import atomic_file

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
PathLike = str | os.PathLike[str]


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


def read_events(
    paths: PathLike | Iterable[PathLike],
    *,
    strict: bool = False,
    rejects_path: PathLike | None = None,
    event_types: Collection[str] | None = None,
) -> tuple[EventLog, IngestSummary]:
    """Parse and validate interaction logs.

    ``event_types``: accepted event names (default: the keys of ``DEFAULT_EVENT_WEIGHTS``).
    ``rejects_path``: JSONL file receiving ``{file, line, reason, code, raw}`` per rejected line
    (replaced atomically, not appended to; empty when every line was accepted).
    """
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
