"""The block reader (``read_events``) against the per-line reader it replaced, line for line.

Random mixes of good lines in many layouts and bad lines of every reason must give identical columns,
summaries, rejects files and strict-mode errors; and lines in the common layouts must take the fast path.
"""

from __future__ import annotations

import gzip
import json
import random
import time

import numpy as np
import orjson
import pytest

from app.data import events
from app.data.eventblocks import BlockParser
from app.data.events import IngestError, _read_events_per_line, read_events
from app.data.schema import KNOWN_EVENT_TYPES, MIN_TS
from tests.data.test_events import BAD_LINES

NOW = 1_750_000_000  # the clock both readers see (ts near "now + 1 day" must not depend on when tests run)
LATEST = NOW + 86_400
COLUMNS = ("user_id", "item_id", "event", "ts", "rating", "weight", "platform")
EVENTS = sorted(KNOWN_EVENT_TYPES)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: float(NOW))


ODD_IDS = [
    " u1 ",  # stripped
    "x" * 7,  # 8-byte word and length limits
    "x" * 8,
    "x" * 9,
    "x" * 31,
    "x" * 32,
    "x" * 33,
    "x" * 127,
    "x" * 128,
    "x" * 129,
    "josé",
    "a\u0085b",  # a C1 control character
    "a\tb",
    "a\x7fb",
    'q"uote',
    "back\\slash",
    "",
    "  ",
    "String",
    "NULL",
    " none ",
    "nan",
    "007",
    "-5",
    "{}",
    "a,b",
    'a":"b',
    "ü" * 70,
    0,
    -5,
    10**17,
    10**18,
    10**19,
    1.5,
    True,
    None,
    ["u1"],
]
ODD_TS = [
    MIN_TS,
    MIN_TS - 1,
    LATEST,
    LATEST + 1,
    999_999_999,
    1_000_000_000,
    9_999_999_999,
    1_700_000_000_000,  # milliseconds
    1_700_000_000.5,
    -1,
    0,
    2**63 + 5,
    "2023-11-14T22:13:20Z",
    "2023-11-14",
    "yesterday",
    True,
    None,
    [1],
]
NUMBERS = [1, 2, 3, 4, 5, 4.5, 4.0, 3.25, 0.5, 0, 5.5, 6, 1.0000000000000002, 4.999999999999999, -4, 0.1, 2.5, 1e-3]
ODD_NUMBERS = [1e300, 1e16, 123456789012345.6, 10**15, 10**16, "5", None, True, [4]]


def _pick(rng: random.Random, odd: float, normal, odd_values: list):
    return rng.choice(odd_values) if rng.random() < odd else normal()


def event_line(rng: random.Random, odd: float) -> bytes:
    """A line built from a dict: valid JSON in a common layout, with an odd value at rate ``odd``."""
    row: dict[str, object] = {
        "user_id": _pick(
            rng, odd, lambda: f"u{rng.randrange(300)}" if rng.random() < 0.8 else rng.randrange(1, 10**6), ODD_IDS
        ),
        "item_id": _pick(rng, odd, lambda: f"i{rng.randrange(300)}", ODD_IDS),
        "event": _pick(rng, odd, lambda: rng.choice(EVENTS), ["teleport", 3, "View", "", None]),
        "ts": _pick(rng, odd, lambda: rng.randrange(MIN_TS, LATEST), ODD_TS),
    }
    if rng.random() < 0.7:
        row["platform"] = _pick(rng, odd, lambda: rng.choice(["web", "mobile"]), ["", None, 7, "tv", "wéb"])
    if rng.random() < 0.25 or (row["event"] == "rating" and rng.random() < 0.95):
        row["rating"] = _pick(rng, odd, lambda: rng.choice(NUMBERS), ODD_NUMBERS)
    if rng.random() < 0.1:
        row["weight"] = _pick(rng, odd, lambda: rng.choice(NUMBERS), ODD_NUMBERS)
    if rng.random() < odd:
        row["extra"] = rng.choice([[1, 2], {"a": 1}, "x", None])
    keys = list(row)
    if rng.random() < odd:
        rng.shuffle(keys)
    row = {k: row[k] for k in keys}
    style = rng.random()
    if style < 0.65:
        try:
            line = orjson.dumps(row)
        except TypeError:  # an integer beyond 64 bits
            line = json.dumps(row, separators=(",", ":")).encode()
    elif style < 0.9:
        line = json.dumps(row).encode()  # ", " and ": ", non-ASCII escaped
    else:
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
    if rng.random() < odd:
        line = rng.choice(
            [
                lambda b: b"  " + b + b" \t",
                lambda b: b.replace(b":", b": ", 1),
                lambda b: b.replace(b'"ts":', b'"ts":0', 1),  # a leading zero: invalid JSON
                lambda b: b.replace(b'"ts":', b'"ts":-', 1),
                lambda b: b[:-1] + b',"user_id":"dup"}',  # a duplicate key: the last one counts
                lambda b: b.replace(b'"rating":', b'"rating":1e0+', 1),
                lambda b: b.replace(b'"rating":', b'"rating":0', 1),
                lambda b: b.replace(b"}", b" }"),
                lambda b: b.replace(b'"', b"'"),
            ]
        )(line)
    return line


def raw_line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.7:
        return event_line(rng, odd=0.02)  # mostly good, in a few layouts: the fast path's lines
    if kind < 0.85:
        return event_line(rng, odd=0.3)
    if kind < 0.93:
        return rng.choice(BAD_LINES)[0].encode()
    return rng.choice(
        [
            b"",
            b"   ",
            b"\t",
            b"null",
            b"5",
            b'"text"',
            b"[1, 2]",
            b"{}",
            b"{",
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":NaN}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000}{}',
            b'{"user_id":"u\xff","item_id":"i1","event":"view","ts":1700000000}',
            b'{"user_id":"u\\u0001","item_id":"i1","event":"view","ts":1700000000}',
            b'{"user_id":"\\u0075\\u0031","item_id":"i1","event":"view","ts":1700000000}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"rating":4.50}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"weight":1E2}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"rating":null}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"platform":"web",}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":17000000000}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"rating":05}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"rating":4.}',
            b'{"user_id":"u1","item_id":"i1","event":"view","ts":1700000000,"rating":.5}',
        ]
    )


def mixed_log(seed: int, n: int, newline: bytes = b"\n") -> bytes:
    rng = random.Random(seed)
    return newline.join(raw_line(rng) for _ in range(n)) + newline


def assert_same(paths, tmp_path, **kwargs) -> None:
    """Both readers on ``paths``: identical columns, summaries, rejects and strict-mode outcome."""
    new_rejects, old_rejects = tmp_path / "new.rejects.jsonl", tmp_path / "old.rejects.jsonl"
    new, new_summary = read_events(paths, rejects_path=new_rejects, **kwargs)
    old, old_summary = _read_events_per_line(paths, rejects_path=old_rejects, **kwargs)
    for column in COLUMNS:
        a, b = getattr(new, column), getattr(old, column)
        assert a.dtype == b.dtype, column
        if a.dtype == object:
            assert a.tolist() == b.tolist(), column
        else:
            np.testing.assert_array_equal(a, b, err_msg=column)
    new_dict, old_dict = new_summary.to_dict(), old_summary.to_dict()
    new_dict["rejects_path"] = old_dict["rejects_path"] = None
    assert new_dict == old_dict
    assert new_rejects.read_bytes() == old_rejects.read_bytes()
    errors = []
    for reader in (read_events, _read_events_per_line):
        try:
            reader(paths, strict=True, **kwargs)
            errors.append(None)
        except IngestError as exc:
            errors.append((exc.file, exc.line, exc.reason))
    assert errors[0] == errors[1]


@pytest.mark.parametrize("seed", range(6))
def test_random_mixes_match_the_per_line_reader(tmp_path, monkeypatch, seed):
    if seed % 2:  # small blocks: many block boundaries, templates carried from block to block
        monkeypatch.setattr(events, "BLOCK_BYTES", 1 + 97 * seed)
    path = tmp_path / "log.jsonl"
    path.write_bytes(mixed_log(seed, 3000))
    assert_same(path, tmp_path)


def test_line_endings_bom_gzip_directories_and_event_types(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(events, "_expected_lines", lambda files: 1)  # the columns grow many times
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a_crlf.jsonl").write_bytes(mixed_log(10, 800, b"\r\n"))
    (folder / "b_cr.jsonl").write_bytes(mixed_log(11, 300, b"\r"))
    (folder / "c_bom.jsonl").write_bytes(b"\xef\xbb\xbf" + mixed_log(12, 500))
    (folder / "d_no_final_newline.jsonl").write_bytes(mixed_log(13, 300)[:-1])
    (folder / "e_mixed_endings.jsonl").write_bytes(mixed_log(14, 200).replace(b"\n", b"\r\r\n", 50))
    with gzip.open(folder / "f.jsonl.gz", "wb") as fh:
        fh.write(mixed_log(15, 2000))
    (folder / "g_bare_last_cr.jsonl").write_bytes(mixed_log(16, 100)[:-1] + b"\r")
    assert_same(folder, tmp_path)
    assert_same(folder, tmp_path, event_types={"view", "rating", "purchase"})


def test_a_truncated_gzip_fails_at_the_same_line(tmp_path):
    data = gzip.compress(mixed_log(20, 20_000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    errors = []
    for reader in (read_events, _read_events_per_line):
        with pytest.raises(IngestError) as err:
            reader(path)
        errors.append((err.value.file, err.value.line, err.value.reason))
    assert errors[0] == errors[1] and "cannot read file" in errors[0][2]


def canonical_lines(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        row = {
            "user_id": f"user-{rng.randrange(5000)}",
            "item_id": rng.randrange(1, 10**6),
            "event": rng.choice(EVENTS),
            "ts": rng.randrange(MIN_TS, NOW),
            "platform": rng.choice(["web", "mobile"]),
        }
        if row["event"] == "rating" or rng.random() < 0.2:
            row["rating"] = rng.choice([1, 2, 3, 4, 5, 0.5 + rng.randrange(1, 10) / 2])
        if rng.random() < 0.1:
            row["weight"] = rng.choice([0.25, 2, 3.5, 10])
        lines.append(orjson.dumps(row) if rng.random() < 0.7 else json.dumps(row).encode())
    return lines


def test_common_layouts_take_the_fast_path(tmp_path):
    lines = canonical_lines(1, 5000)
    block = b"\n".join(lines) + b"\n"
    found = BlockParser(KNOWN_EVENT_TYPES, NOW).parse(block, crlf=False)
    rating_out_of_range = [b'"rating":0.5' in line for line in lines]
    assert found.fast.tolist() == [not bad for bad in rating_out_of_range]  # 0.5 < 1 is the only reject
    path = tmp_path / "log.jsonl"
    path.write_bytes(block)
    assert_same(path, tmp_path)


def test_a_fingerprint_collision_only_costs_speed(tmp_path, monkeypatch):
    """Every value fingerprinting alike: the stored bytes still tell them apart."""
    from app.data import eventblocks

    monkeypatch.setattr(eventblocks, "fingerprint", lambda lens, words: np.zeros(lens.size, np.uint64))
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(canonical_lines(2, 2000)) + b"\n")
    assert_same(path, tmp_path)


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(canonical_lines(3, 500)) + b"\n")
    quiet, _ = read_events(path)  # small input, stderr not a terminal: no bar
    assert capsys.readouterr().err == ""
    shown, _ = read_events(path, progress=True)
    assert "reading events" in capsys.readouterr().err
    assert shown.user_id.tolist() == quiet.user_id.tolist()
    read_events(path, progress=False)
    assert capsys.readouterr().err == ""
