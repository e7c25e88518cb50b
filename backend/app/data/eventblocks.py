"""The event reader's fast path: a block of JSONL lines checked with NumPy, without a Python object per line.

``read_events`` (``app.data.events``) hands over blocks of whole lines (about 4 MiB each). A line
is taken here only when its bytes are *exactly* one of a few learned layouts ("templates") with its
values filled in, e.g. ``{"user_id":"u1","item_id":"i9","event":"view","ts":1700000000,"platform":"web"}``
(``orjson.dumps``'s layout; the ``", "`` / ``": "`` spacing of ``json.dumps`` is the second style). A
template is learned from the first line no template matches (``orjson.loads`` gives its keys in order).

Why this is exact: a matched line is the template's literal bytes (brace, quoted keys, separators)
with holes between them, nothing else. A string hole holds no quote (the line has no quote beyond the
template's own), no backslash, no control character and only ASCII, so it is a JSON string whose value
is its bytes; a number hole is a plain decimal (``0``, ``[1-9][0-9]*``, optionally ``.[0-9]+``) whose
value is computed exactly (an integer, or an integer mantissa below 2**53 divided by a power of ten,
which IEEE division rounds as a correct decimal parser does). So ``orjson.loads`` of the line is the
dict the template describes, and the checks here are ``check_event``'s on that dict (ids, events and
platforms once per distinct raw value, through the same functions). Every line that is not matched,
or is matched but fails a check, is left to the caller's per-line path (``orjson.loads`` +
``check_event``), which alone decides the reason and reports the line number of a rejected line.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import orjson
from numpy.lib.stride_tricks import sliding_window_view

from app.data.schema import (
    MAX_FUTURE_SECONDS,
    MIN_TS,
    RATING_MAX,
    RATING_MIN,
    REQUIRED_FIELDS,
    BadEvent,
    check_id,
)
from app.data.types import STRING_COLUMNS

FIELDS = frozenset(("user_id", "item_id", "event", "ts", "rating", "weight", "platform"))
STYLES = ((b":", b","), (b": ", b", "))  # (after a key, between members): orjson.dumps, json.dumps
MAX_TEMPLATES = 16  # kept, most used first (a log mixing optional fields and two styles has ~8)
LEARN_TRIES = 16  # unmatched lines per block a template is learned from; the rest take the per-line path
VALUE_WORDS = 4  # string values of up to 32 bytes take the fast path (compared as 8-byte words)
SMALL_TABLE = 256  # a column with at most this many distinct values is looked up row by row
PAD = 64  # zero bytes around a block, so fixed-width reads near its ends stay inside the buffer
ID_DIGITS = 18  # integer ids up to 18 digits (longer ones take the per-line path)
NUM_WIDTH = 16  # a rating or weight of up to 16 characters, at most 15 of them digits
MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
POW10 = 10 ** np.arange(ID_DIGITS, dtype=np.int64)
LOW_NIBBLES, HIGH_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0xF0F0F0F0F0F0F0F0)
ZEROS, SIXES = np.uint64(0x3030303030303030), np.uint64(0x0606060606060606)  # "00000000", + 6 per byte
MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], np.uint64)


@dataclass(frozen=True)
class Template:
    """One line layout: ``literals[0] value literals[1] value ... literals[-1]``."""

    keys: tuple[str, ...]
    kinds: tuple[str, ...]  # per key: "str" (a JSON string), "int" (an integer), "num" (a decimal)
    literals: tuple[bytes, ...]  # len(keys) + 1 byte strings between the values
    n_quotes: int
    anchors: tuple[int, ...]  # per literal: index of its first quote among the line's quotes; -1: the line end
    offsets: tuple[int, ...]  # per literal: where that quote sits in it (or its length, from the line end)
    min_gaps: tuple[int, ...]  # per value: its least length (a number has a digit; a string may be empty)
    words: tuple[tuple[int, int, np.uint64, np.uint64 | None], ...]  # (literal, offset, 8 bytes, mask or None)


def make_template(keys: tuple[str, ...], kinds: tuple[str, ...], style: int) -> Template:
    after_key, between = STYLES[style]
    literals: list[bytes] = []
    current = b"{"
    for i, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
        if i:
            current += between
        current += b'"' + key.encode() + b'"' + after_key + (b'"' if kind == "str" else b"")
        literals.append(current)
        current = b'"' if kind == "str" else b""
    literals.append(current + b"}")
    anchors, offsets, words = [], [], []
    seen = 0
    for k, lit in enumerate(literals):
        first = lit.find(b'"')
        anchors.append(seen if first >= 0 else -1)
        offsets.append(first if first >= 0 else len(lit))
        seen += lit.count(b'"')
        for j in range(0, len(lit), 8):
            value = np.uint64(int.from_bytes(lit[j : j + 8], "little"))
            words.append((k, j, value, MASKS[len(lit) - j] if len(lit) - j < 8 else None))
    min_gaps = tuple(0 if kind == "str" else 1 for kind in kinds)
    return Template(keys, kinds, tuple(literals), seen, tuple(anchors), tuple(offsets), min_gaps, tuple(words))


def _kind(key: str, value: object) -> str | None:
    """The hole kind a template gives this key's value, or None when such a line is left to check_event."""
    if isinstance(value, bool):
        return None
    if key in ("user_id", "item_id"):
        return "str" if isinstance(value, str) else "int" if isinstance(value, int) else None
    if key in ("event", "platform"):
        return "str" if isinstance(value, str) else None
    if key == "ts":
        return "int" if isinstance(value, int) else None
    return "num" if isinstance(value, (int, float)) else None  # rating, weight


def candidate_templates(line: bytes) -> list[Template]:
    """Templates (both styles) for the keys and value kinds of one line; empty when it has none."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(obj, dict) or not obj.keys() <= FIELDS or not obj.keys() >= set(REQUIRED_FIELDS):
        return []
    kinds = tuple(_kind(k, v) for k, v in obj.items())
    if None in kinds:
        return []
    return [make_template(tuple(obj), kinds, style) for style in range(len(STYLES))]  # type: ignore[arg-type]


class Interner:
    """Codes of one string column.

    ``codes`` (text -> code) is shared with the per-line path. The fast path finds a value's code from
    its raw bytes: a 64-bit fingerprint of its 8-byte words is looked up in a sorted table (once per
    distinct fingerprint in a block), and the entry's stored words and length are compared with the
    value's, so a fingerprint collision only sends a line to the per-line path. ``check`` turns a raw
    value into the stored text or raises ``BadEvent`` (such lines are left to the per-line path, which
    rejects them with the reason). New fingerprints go to a small sorted table merged into the main one
    now and then, so adding values costs little however many there are. Blocks are parsed in several
    threads: ``code`` and ``lookup`` hold the column's lock (NumPy releases the GIL inside, so one
    thread looks up users while another matches its block)."""

    def __init__(self, check: Callable[[str], str]):
        self.codes: dict[str, int] = {}
        self._check = check
        self._lock = threading.RLock()
        self._main = (np.zeros(0, np.uint64), np.zeros(0, np.int64))  # sorted fingerprints, their entries
        self._new = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
        self._n = 0  # entries: a value's words, length and code
        self._words = [np.zeros(256, np.uint64) for _ in range(VALUE_WORDS)]
        self._lens = np.zeros(256, np.int64)
        self._code = np.zeros(256, np.int32)

    def code(self, text: str) -> int:
        code = self.codes.get(text)
        if code is None:
            with self._lock:
                code = self.codes.get(text)
                if code is None:
                    code = self.codes[text] = len(self.codes)
        return code

    def _add(self, fps: np.ndarray, words: list[np.ndarray], lens: np.ndarray, codes: np.ndarray) -> None:
        """New entries (``fps`` sorted and in neither table)."""
        first, n = self._n, fps.size
        while first + n > self._lens.size:  # amortised growth
            grow = self._lens.size
            self._words = [np.concatenate([w, np.zeros(grow, np.uint64)]) for w in self._words]
            self._lens = np.concatenate([self._lens, np.zeros(grow, np.int64)])
            self._code = np.concatenate([self._code, np.zeros(grow, np.int32)])
        for j, w in enumerate(words):
            self._words[j][first : first + n] = w
        self._lens[first : first + n] = lens
        self._code[first : first + n] = codes
        self._n += n
        new_fp, new_entry = self._new
        at = np.searchsorted(new_fp, fps)
        new_fp, new_entry = np.insert(new_fp, at, fps), np.insert(new_entry, at, np.arange(first, first + n))
        if new_fp.size > max(SMALL_TABLE, self._main[0].size // 8):  # merge: the main table is rewritten seldom
            fp, entry = np.concatenate([self._main[0], new_fp]), np.concatenate([self._main[1], new_entry])
            order = np.argsort(fp, kind="stable")
            self._main, new_fp, new_entry = (fp[order], entry[order]), new_fp[:0], new_entry[:0]
        self._new = (new_fp, new_entry)

    def _learn(self, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, words: list, fp: np.ndarray) -> None:
        """Add the values at ``starts`` (fingerprints in neither table), checking each distinct one once."""
        fps, first = np.unique(fp, return_index=True)
        data = buf.data
        codes = np.empty(fps.size, np.int32)
        for k, (s, n) in enumerate(zip(starts[first].tolist(), lens[first].tolist(), strict=True)):
            try:
                codes[k] = self.code(self._check(str(data[s : s + n], "ascii")))
            except BadEvent:
                codes[k] = -1
        self._add(fps, [w[first] for w in words], lens[first], codes)

    def _find(self, fp: np.ndarray) -> np.ndarray:
        """The entry of each fingerprint, -1 when neither table has it."""
        entries = np.full(fp.size, -1, np.int64)
        todo = None  # rows still to find (None: all)
        for table_fp, table_entry in (self._main, self._new):
            if not table_fp.size:
                continue
            query = fp if todo is None else fp[todo]
            at = np.minimum(np.searchsorted(table_fp, query), table_fp.size - 1)
            hit = table_fp[at] == query
            if todo is None:
                entries[hit] = table_entry[at[hit]]
                todo = np.flatnonzero(~hit)
            else:
                entries[todo[hit]] = table_entry[at[hit]]
                todo = todo[~hit]
            if not todo.size:
                break
        return entries

    def lookup(self, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, words: list[np.ndarray]) -> np.ndarray:
        """Code per value (``words``: its bytes as little-endian words, zero-padded), -1 where the
        value is invalid or not found exactly."""
        fp = fingerprint(lens, words)
        with self._lock:
            return self._lookup(buf, starts, lens, words, fp)

    def _lookup(
        self, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, words: list[np.ndarray], fp: np.ndarray
    ) -> np.ndarray:
        if self._n <= SMALL_TABLE:  # few distinct values (events, platforms): search every row
            distinct, inverse = fp, None
        else:  # many: search each distinct fingerprint once (sorting them is cheap)
            order = np.argsort(fp)
            ordered = fp[order]
            head = np.empty(fp.size, bool)
            head[:1] = True
            np.not_equal(ordered[1:], ordered[:-1], out=head[1:])
            distinct = ordered[head]
            inverse = np.empty(fp.size, np.int64)
            inverse[order] = np.cumsum(head) - 1
        entries = self._find(distinct)
        missing = np.flatnonzero(entries < 0)
        if missing.size:
            rows = missing if inverse is None else order[head][missing]  # a row holding each
            self._learn(buf, starts[rows], lens[rows], [w[rows] for w in words], fp[rows])
            entries[missing] = self._find(distinct[missing])
        if inverse is not None:
            entries = entries[inverse]
        same = self._lens[entries] == lens
        for j, w in enumerate(words):
            same &= self._words[j][entries] == w
        return np.where(same, self._code[entries], -1)


def fingerprint(lens: np.ndarray, words: list[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of each value (length and words); zero words add nothing, so it does not depend on
    how many words a block needed."""
    fp = lens.astype(np.uint64) * MIX[0]
    for j, w in enumerate(words):
        fp ^= w * MIX[(j + 1) % len(MIX)] + w
    fp ^= fp >> np.uint64(29)
    fp *= MIX[1]
    fp ^= fp >> np.uint64(32)
    return fp


class Lines(NamedTuple):
    """One block's bytes and where its lines and quotes are (positions index ``buf``)."""

    buf: np.ndarray  # PAD zero bytes, the block, PAD zero bytes
    words: np.ndarray  # words[i] is buf[i:i+8] read as a little-endian uint64 (a strided view)
    quotes: np.ndarray  # positions of every '"'
    first_quote: np.ndarray  # per line: the index in ``quotes`` of its first quote
    starts: np.ndarray  # per line: where it starts ...
    ends: np.ndarray  # ... and ends (before its "\n", or "\r\n")


@dataclass
class Block:
    """The fast path's verdict on one block: ``fast[r]`` lines are accepted with these column values;
    every other line (blank, unmatched, or failing a check) is for the per-line path."""

    starts: np.ndarray  # line r is buf[starts[r]:ends[r]] (ends: before the "\n", or "\r\n")
    ends: np.ndarray
    newlines: np.ndarray
    fast: np.ndarray  # bool
    codes: dict[str, np.ndarray]  # STRING_COLUMNS -> int32 codes
    ts: np.ndarray  # int64
    rating: np.ndarray  # float32, NaN when absent
    weight: np.ndarray  # float32, NaN when absent


class BlockParser:
    """Fast-path state for one ``read_events`` call: the templates seen so far and the column codes.

    ``parse`` may run in several threads at once: each has its own buffers, reads the template list
    (which is replaced, never changed in place) and merges what it learned under a lock; the columns
    lock themselves."""

    def __init__(self, event_types: Collection[str], now: float):
        types = frozenset(event_types)

        def event(text: str) -> str:
            if text not in types:
                raise BadEvent("unknown_event", text)
            return text

        self.columns = {
            "user_id": Interner(lambda text: check_id("user_id", text)),
            "item_id": Interner(lambda text: check_id("item_id", text)),
            "event": Interner(event),
            "platform": Interner(lambda text: text),
        }
        self.templates: list[Template] = []
        self.latest = math.floor(now + MAX_FUTURE_SECONDS)  # int ts <= now + 1 day  <=>  ts <= floor(...)
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: its reusable buffers

    def _buffers(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """This thread's byte buffer and mask, reused from block to block (no allocation, and page
        faults, each time)."""
        local = self._local
        buf = getattr(local, "buf", None)
        if buf is None or buf.size < size:
            local.buf = np.zeros(max(size, 2 * (0 if buf is None else buf.size)), np.uint8)
            local.mask = np.empty(local.buf.size, bool)
        return local.buf, local.mask

    def parse(self, block: bytes | bytearray, crlf: bool) -> Block:
        """``block``: whole lines, each ending in "\\n" (``crlf``: every "\\r" is right before one)."""
        size = len(block) + 2 * PAD
        whole_buf, whole_mask = self._buffers(size)
        buf = whole_buf[:size]  # PAD zero bytes, the block, PAD zero bytes
        body = buf[PAD:-PAD]
        body[:] = np.frombuffer(block, np.uint8)
        buf[-PAD:] = 0
        mask = whole_mask[: len(block)]
        newlines = np.flatnonzero(np.equal(body, 10, out=mask)) + PAD
        quotes = np.flatnonzero(np.equal(body, 34, out=mask)) + PAD
        n = newlines.size
        starts = np.empty(n, np.int64)
        starts[:1] = PAD
        starts[1:] = newlines[:-1] + 1
        ends = newlines - (buf[newlines - 1] == 13) if crlf else newlines
        out = Block(
            starts,
            ends,
            newlines,
            np.zeros(n, bool),
            {c: np.full(n, -1, np.int32) for c in STRING_COLUMNS},
            np.zeros(n, np.int64),
            np.full(n, np.nan, np.float32),
            np.full(n, np.nan, np.float32),
        )
        remaining = ends > starts
        # Only printable ASCII without a backslash takes the fast path (checked on the whole block first:
        # a line with anything else is rare). A "\r" is only ever a "\r\n" line ending here.
        n_cr = block.count(b"\r") if crlf else 0
        clean = block.isascii() and b"\\" not in block and b"\x7f" not in block
        if not clean or int(np.count_nonzero(np.less(body, 32, out=mask))) != n + n_cr:
            bad = np.flatnonzero((body >= 127) | (body == 92) | ((body < 32) & (body != 10) & (body != 13)))
            remaining[np.searchsorted(newlines, bad + PAD)] = False
        upto = np.searchsorted(quotes, newlines)  # quotes before each line's end (none is at a newline)
        first_quote = np.empty(n, np.int64)  # per line: the index in ``quotes`` of its first quote
        first_quote[:1] = 0
        first_quote[1:] = upto[:-1]
        n_quotes = upto - first_quote
        words = np.ndarray((buf.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
        ctx = Lines(buf, words, quotes, first_quote, starts, ends)

        hits: dict[Template, int] = {}
        for tpl in self.templates:  # replaced, never changed in place: safe beside other threads
            if remaining.any():
                hits[tpl] = self._apply(
                    tpl, np.flatnonzero(remaining & (n_quotes == tpl.n_quotes)), ctx, remaining, out
                )
        for _ in range(LEARN_TRIES):
            left = np.flatnonzero(remaining)
            if not left.size:
                break
            r = int(left[0])
            remaining[r] = False  # decided here either way
            for tpl in candidate_templates(buf[starts[r] : ends[r]].tobytes()):
                if tpl.n_quotes == n_quotes[r] and _match(tpl, np.array([r]), ctx)[0].size:
                    rows = np.r_[r, np.flatnonzero(remaining & (n_quotes == tpl.n_quotes))]
                    hits[tpl] = self._apply(tpl, rows, ctx, remaining, out)
                    break
        ranked = sorted(hits, key=hits.__getitem__, reverse=True)  # the most used is tried first next time
        with self._lock:  # templates are equal by value: one learned by two threads is kept once
            self.templates = (ranked + [t for t in self.templates if t not in hits])[:MAX_TEMPLATES]
        return out

    def _apply(self, tpl: Template, rows: np.ndarray, ctx: Lines, remaining: np.ndarray, out: Block) -> int:
        """Match ``rows`` against ``tpl``; matched lines are decided (fast, or for the per-line path).
        Returns how many matched."""
        if not rows.size:
            return 0
        rows, holes = _match(tpl, rows, ctx)
        remaining[rows] = False
        if not rows.size:
            return 0
        buf, words = ctx.buf, ctx.words
        ok = np.ones(rows.size, bool)
        values: dict[str, np.ndarray] = {}
        for key, kind, (s, e) in zip(tpl.keys, tpl.kinds, holes, strict=True):
            if kind == "num":
                values[key], good = _decimal(buf, s, e)
            elif key == "ts":
                values[key], good = _timestamp(buf, words, s, e)
                good &= (values[key] >= MIN_TS) & (values[key] <= self.latest)
            else:
                good = _integer(buf, s, e, ID_DIGITS)[1] if kind == "int" else (e - s) <= 8 * VALUE_WORDS
                values[key] = s
                values[key + ":end"] = e
            ok &= good
        keep = np.flatnonzero(ok)
        rows = rows[keep]
        spans = {k: v[keep] for k, v in values.items()}
        for column in STRING_COLUMNS:
            if column in spans:
                s, e = spans[column], spans[column + ":end"]
                codes = self.columns[column].lookup(buf, s, e - s, _words(words, s, e - s))
            else:  # only platform may be absent: ""
                codes = np.full(rows.size, self.columns[column].code(""), np.int32)
            out.codes[column][rows] = codes
        ok = np.ones(rows.size, bool)
        for column in STRING_COLUMNS:
            ok &= out.codes[column][rows] >= 0
        if "rating" in spans:
            r = spans["rating"]
            ok &= (r >= RATING_MIN) & (r <= RATING_MAX)
            out.rating[rows] = r.astype(np.float32)
        else:  # a "rating" event needs a rating
            rating_code = self.columns["event"].codes.get("rating", -2)
            ok &= out.codes["event"][rows] != rating_code
        if "weight" in spans:
            ok &= spans["weight"] > 0
            out.weight[rows] = spans["weight"].astype(np.float32)
        out.ts[rows] = spans["ts"]
        out.fast[rows[ok]] = True
        return int(rows.size)


def _match(tpl: Template, rows: np.ndarray, ctx: Lines) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The rows whose bytes are exactly the template's literals around its holes; (start, end) per hole.

    Each literal is placed by a quote it holds (or by the line end), the holes are what lies between
    consecutive literals, and every literal byte is compared, 8 bytes at a time."""
    _, words, quotes, first_quote, starts, ends = ctx
    base = first_quote[rows]
    pos = [
        quotes[base + a] - off if a >= 0 else ends[rows] - off for a, off in zip(tpl.anchors, tpl.offsets, strict=True)
    ]
    ends_of = [p + len(lit) for p, lit in zip(pos, tpl.literals, strict=True)]
    ok = (pos[0] == starts[rows]) & (ends_of[-1] == ends[rows])
    for k, least in enumerate(tpl.min_gaps):
        ok &= pos[k + 1] - ends_of[k] >= least
    for k, j, value, mask in tpl.words:
        got = words[pos[k] + j] if j else words[pos[k]]
        if mask is not None:
            got &= mask
        ok &= got == value
    keep = np.flatnonzero(ok)
    return rows[keep], [(ends_of[k][keep], pos[k + 1][keep]) for k in range(len(tpl.keys))]


def _words(words: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> list[np.ndarray]:
    """A value's bytes as zero-padded little-endian 8-byte words (as many as the longest value needs)."""
    out = [words[starts] & MASKS[np.minimum(lens, 8)]]
    for j in range(1, max(1, -(-int(lens.max(initial=0)) // 8))):
        out.append(words[starts + 8 * j] & MASKS[np.clip(lens - 8 * j, 0, 8)])
    return out


def _window(buf: np.ndarray, e: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes before each end, one row per value (a strided view: no index matrix)."""
    return sliding_window_view(buf, width)[e - width]


def _integer(buf: np.ndarray, s: np.ndarray, e: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``0`` / ``[1-9][0-9]*`` holes of up to ``width`` digits (int64; exact up to 15 digits,
    which is all a ts has), and which holes are such numbers."""
    n = e - s
    digit = _window(buf, e, width) - np.uint8(48)  # bytes below "0" wrap around to > 9
    inside = np.arange(width) >= (width - n)[:, None]
    ok = (n >= 1) & (n <= width) & ((digit <= 9) | ~inside).all(axis=1) & ((buf[s] != 48) | (n == 1))
    value = np.where(inside, digit, 0).astype(np.float64) @ POW10[width - 1 :: -1].astype(np.float64)
    return value.astype(np.int64), ok


def _timestamp(buf: np.ndarray, words: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of 9- or 10-digit integer holes (every ts in range has 9 or 10), and which holes are such:
    the last 8 digits are read as one word and converted with SWAR arithmetic (no per-digit arrays)."""
    n = e - s
    x = words[e - 8]  # the last 8 digits, the first of them in the lowest byte
    ok = ((n == 9) | (n == 10)) & ((x & HIGH_NIBBLES) == ZEROS) & (((x + SIXES) & HIGH_NIBBLES) == ZEROS)
    x = x & LOW_NIBBLES
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)  # pairs of digits
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)  # fours
    x = (x * np.uint64(10_000) + (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)  # eight
    ninth = buf[e - 9] - np.uint8(48)  # bytes below "0" wrap around to > 9
    tenth = np.where(n == 10, buf[e - 10] - np.uint8(48), 0)
    ok &= (ninth <= 9) & (tenth <= 9) & (buf[s] != 48)  # no leading zero
    return x.astype(np.int64) + ninth.astype(np.int64) * 10**8 + tenth.astype(np.int64) * 10**9, ok


def _decimal(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values (float64) of JSON numbers without sign or exponent (``4``, ``4.5``, ``0.25``), correctly
    rounded; and which holes are such numbers. One digit (a star rating) is the common case."""
    one = e - s == 1
    digit = buf[s] - np.uint8(48)
    value, ok = digit.astype(np.float64), one & (digit <= 9)
    longer = np.flatnonzero(~one)
    if longer.size:
        value[longer], ok[longer] = _long_decimal(buf, s[longer], e[longer])
    return value, ok


def _long_decimal(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = e - s
    raw = _window(buf, e, NUM_WIDTH)
    inside = np.arange(NUM_WIDTH) >= (NUM_WIDTH - n)[:, None]
    digit = ((raw - np.uint8(48)) <= 9) & inside
    dot = (raw == 46) & inside
    ok = (n >= 1) & (n <= NUM_WIDTH) & (digit | dot | ~inside).all(axis=1) & (dot.sum(axis=1) <= 1)
    ok &= (buf[s] != 46) & (buf[e - 1] != 46) & ((buf[s] != 48) | (n == 1) | (buf[s + 1] == 46))
    ok &= digit.sum(axis=1) <= 15  # the mantissa stays below 2**53: exact in float64
    right = np.cumsum(digit[:, ::-1], axis=1)[:, ::-1] - digit  # digits to the right of each byte
    mantissa = (np.where(digit, raw - np.uint8(48), 0) * POW10[np.minimum(right, ID_DIGITS - 1)]).sum(axis=1)
    frac = (right * dot).sum(axis=1)
    return mantissa / 10.0**frac, ok
