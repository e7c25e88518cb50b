"""Reading JSONL logs: every bad-line reason, strict mode, rejects file, gzip, directories, ISO 8601."""

from __future__ import annotations

import gzip
import time

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from app.data.events import IngestError, read_events
from app.data.schema import EventIn

GOOD = '{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 1700000000}'
FUTURE = int(time.time()) + 3 * 86_400

# (line, reason code): one hand-written line per reason
BAD_LINES = [
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 17000', "invalid_json"),
    ("not json at all", "invalid_json"),
    ('["u1", "i1", "view", 1700000000]', "not_an_object"),
    ('{"item_id": "i1", "event": "view", "ts": 1700000000}', "missing_field"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view"}', "missing_field"),
    ('{"user_id": "u1", "item_id": null, "event": "view", "ts": 1700000000}', "missing_field"),
    ('{"user_id": "", "item_id": "i1", "event": "view", "ts": 1700000000}', "missing_field"),
    ('{"user_id": ["u1"], "item_id": "i1", "event": "view", "ts": 1700000000}', "wrong_type"),
    ('{"user_id": "u1", "item_id": 1.5, "event": "view", "ts": 1700000000}', "wrong_type"),
    ('{"user_id": "u1", "item_id": "i1", "event": 3, "ts": 1700000000}', "wrong_type"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": true}', "wrong_type"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 1700000000, "rating": "5"}', "wrong_type"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 1700000000, "platform": 7}', "wrong_type"),
    ('{"user_id": "u1", "item_id": "i1", "event": "teleport", "ts": 1700000000}', "unknown_event"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": "yesterday"}', "invalid_ts"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 599616000}', "ts_out_of_range"),  # 1989
    (f'{{"user_id": "u1", "item_id": "i1", "event": "view", "ts": {FUTURE}}}', "ts_out_of_range"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 1700000000000}', "ts_out_of_range"),  # ms
    ('{"user_id": "u1", "item_id": "i1", "event": "rating", "ts": 1700000000, "rating": 6}', "rating_out_of_range"),
    ('{"user_id": "u1", "item_id": "i1", "event": "rating", "ts": 1700000000, "rating": 0}', "rating_out_of_range"),
    ('{"user_id": "u1", "item_id": "i1", "event": "rating", "ts": 1700000000}', "missing_rating"),
    ('{"user_id": "u1", "item_id": "i1", "event": "view", "ts": 1700000000, "weight": -1}', "weight_out_of_range"),
    ('{"user_id": "%s", "item_id": "i1", "event": "view", "ts": 1700000000}' % ("u" * 129), "id_too_long"),
    ('{"user_id": "u1", "item_id": "i\\n1", "event": "view", "ts": 1700000000}', "bad_id"),
    ('{"user_id": "string", "item_id": "i1", "event": "view", "ts": 1700000000}', "placeholder_id"),
]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ids by position: a line built from the clock must not change the test ids between xdist workers
@pytest.mark.parametrize("line,code", BAD_LINES, ids=[f"{i}-{code}" for i, (_, code) in enumerate(BAD_LINES)])
def test_each_bad_line_is_rejected_with_its_reason(tmp_path, line, code):
    path = write(tmp_path / "log.jsonl", [GOOD, line, GOOD])
    rejects = tmp_path / "rejects.jsonl"
    log, summary = read_events(path, rejects_path=rejects)
    assert len(log) == 2
    assert (summary.lines, summary.accepted, summary.rejected) == (3, 2, 1)
    assert summary.reasons == {code: 1}
    [row] = [orjson.loads(x) for x in rejects.read_bytes().splitlines()]
    assert row == {"file": str(path), "line": 2, "code": code, "reason": row["reason"], "raw": line}
    assert row["reason"]  # a human-readable explanation

    with pytest.raises(IngestError) as err:
        read_events(path, strict=True)
    assert (err.value.file, err.value.line) == (str(path), 2)
    assert err.value.reason.startswith(code)
    assert f"{path}:2: {code}" in str(err.value)

    # the HTTP boundary (EventIn) applies the same rules, with the same reason code
    if code == "invalid_json":
        with pytest.raises(ValidationError, match="Invalid JSON"):
            EventIn.model_validate_json(line)
    else:
        with pytest.raises(ValidationError, match=code):
            EventIn.model_validate(orjson.loads(line))


def test_mixed_file_summary_counts_and_strict_stops_at_first(tmp_path):
    lines = [GOOD, "", BAD_LINES[0][0], GOOD, "   ", BAD_LINES[13][0], BAD_LINES[15][0], GOOD]
    path = write(tmp_path / "log.jsonl", lines)
    rejects = tmp_path / "out" / "rejects.jsonl"
    _log, summary = read_events(path, rejects_path=rejects)
    assert summary.lines == 8
    assert (summary.accepted, summary.rejected, summary.blank) == (3, 3, 2)
    assert summary.accepted + summary.rejected + summary.blank == summary.lines  # nothing dropped silently
    assert summary.reasons == {"invalid_json": 1, "unknown_event": 1, "ts_out_of_range": 1}
    assert summary.rejects_path == str(rejects)
    assert [orjson.loads(x)["line"] for x in rejects.read_bytes().splitlines()] == [3, 6, 7]
    assert "3 accepted, 3 rejected" in summary.describe()
    with pytest.raises(IngestError) as err:
        read_events(path, strict=True)
    assert err.value.line == 3


def test_columns_and_types(tmp_path):
    lines = [
        '{"user_id": 42, "item_id": "m7", "event": "rating", "ts": 1700000000, "rating": 4.5, "platform": "web"}',
        '{"user_id": "u2", "item_id": 7, "event": "like", "ts": 1700000100.9, "weight": 2.5, "extra": [1]}',
    ]
    log, _ = read_events(write(tmp_path / "log.jsonl", lines))
    assert log.user_id.tolist() == ["42", "u2"]
    assert log.item_id.tolist() == ["m7", "7"]
    assert log.event.tolist() == ["rating", "like"]
    assert log.ts.dtype == np.int64 and log.ts.tolist() == [1700000000, 1700000100]
    assert log.rating[0] == 4.5 and np.isnan(log.rating[1])
    assert np.isnan(log.weight[0]) and log.weight[1] == 2.5
    assert log.platform.tolist() == ["web", ""]


@pytest.mark.parametrize(
    "ts,expected",
    [
        ("2023-11-14T22:13:20Z", 1700000000),
        ("2023-11-14T22:13:20+00:00", 1700000000),
        ("2023-11-15T00:13:20+02:00", 1700000000),
        ("2023-11-14T22:13:20", 1700000000),  # naive means UTC
        ("2023-11-14 22:13:20.750Z", 1700000000),
        ("2023-11-14", 1699920000),
    ],
)
def test_iso8601_timestamps(tmp_path, ts, expected):
    path = write(tmp_path / "log.jsonl", [f'{{"user_id": "u", "item_id": "i", "event": "view", "ts": "{ts}"}}'])
    log, _summary = read_events(path, strict=True)
    assert log.ts.tolist() == [expected]
    assert EventIn(user_id="u", item_id="i", event="view", ts=ts).ts == expected


def test_gzip_and_directory(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    write(folder / "a.jsonl", [GOOD, GOOD.replace('"u1"', '"u2"')])
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(GOOD.replace('"u1"', '"u3"') + "\nbroken\n")
    (folder / "notes.txt").write_text("not a log")  # ignored: not a log suffix
    rejects = tmp_path / "rejects.jsonl"
    log, summary = read_events(folder, rejects_path=rejects)
    assert log.user_id.tolist() == ["u1", "u2", "u3"]
    assert summary.files == [str(folder / "a.jsonl"), str(folder / "b.jsonl.gz")]
    assert (summary.lines, summary.rejected) == (4, 1)
    row = orjson.loads(rejects.read_bytes())
    assert (row["file"], row["line"], row["raw"]) == (str(folder / "b.jsonl.gz"), 2, "broken")
    # a single gzipped file, and a list of paths
    log2, _ = read_events(folder / "b.jsonl.gz")
    assert log2.user_id.tolist() == ["u3"]
    log3, _ = read_events([folder / "a.jsonl", folder / "b.jsonl.gz"])
    assert len(log3) == 3


def test_event_types_are_configurable_and_missing_input_is_clear(tmp_path):
    path = write(tmp_path / "log.jsonl", ['{"user_id": "u", "item_id": "i", "event": "purchase", "ts": 1700000000}'])
    log, _ = read_events(path, event_types={"purchase"}, strict=True)
    assert log.event.tolist() == ["purchase"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_events(tmp_path / "missing.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.jsonl"):
        read_events(tmp_path / "empty")


def test_rejects_file_is_replaced_and_empty_when_all_good(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("stale\n")
    _, summary = read_events(write(tmp_path / "log.jsonl", [GOOD]), rejects_path=rejects)
    assert summary.rejected == 0 and rejects.read_bytes() == b""
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_read_that_stops_leaves_the_old_rejects_file(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("from the last run\n")
    with pytest.raises(IngestError):
        read_events(write(tmp_path / "log.jsonl", ["oops", GOOD]), rejects_path=rejects, strict=True)
    assert rejects.read_text() == "from the last run\n" and not list(tmp_path.glob(".tmp-*"))


def test_event_in_accepts_ints_and_keeps_ids_as_strings():
    e = EventIn.model_validate({"user_id": 5, "item_id": 9, "event": "play", "ts": 1700000000, "platform": "mobile"})
    assert (e.user_id, e.item_id, e.ts, e.rating, e.weight, e.platform) == ("5", "9", 1700000000, None, None, "mobile")
    custom = EventIn.model_validate(
        {"user_id": 5, "item_id": 9, "event": "buy", "ts": 1700000000}, context={"event_types": {"buy"}}
    )
    assert custom.event == "buy"


def test_invalid_utf8_is_invalid_json_and_raw_text_is_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(
        b'{"user_id": "u\xff", "item_id": "i", "event": "view", "ts": 1700000000}\n' + GOOD.encode() + b"\r\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    log, summary = read_events(path, rejects_path=rejects)
    assert summary.reasons == {"invalid_json": 1} and log.user_id.tolist() == ["u1"]  # CRLF is fine
    assert orjson.loads(rejects.read_bytes())["raw"].startswith('{"user_id": "u\ufffd"')


def test_corrupt_gzip_and_empty_file(tmp_path):
    data = gzip.compress(("\n".join([GOOD] * 2000) + "\n").encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="cannot read file"):
        read_events(tmp_path / "cut.jsonl.gz")
    (tmp_path / "empty.jsonl").write_bytes(b"")
    log, summary = read_events(tmp_path / "empty.jsonl")
    assert len(log) == 0 and summary.lines == 0 and log.user_id.dtype == object


def test_check_cli(tmp_path, capsys):
    from app.data.events import main

    good = write(tmp_path / "good.jsonl", [GOOD])
    bad = write(tmp_path / "bad.jsonl", [GOOD, "oops"])
    assert main([str(good)]) == 0
    assert main([str(bad), "--rejects", str(tmp_path / "r.jsonl")]) == 1
    assert "1 accepted, 1 rejected (invalid_json: 1)" in capsys.readouterr().out
    assert main([str(bad), "--strict"]) == 2
    assert f"{bad}:2: invalid_json" in capsys.readouterr().err


def test_a_ten_million_character_id_is_one_rejected_line_not_a_memory_error(tmp_path):
    huge = '{"user_id": "%s", "item_id": "i1", "event": "view", "ts": 1700000000}' % ("u" * 10_000_000)
    log, summary = read_events(write(tmp_path / "log.jsonl", [GOOD, huge, GOOD]))
    assert len(log) == 2 and summary.reasons == {"id_too_long": 1}


def test_a_byte_order_mark_and_cr_only_line_endings_are_read_as_lines(tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + (GOOD + "\n" + GOOD + "\n").encode())
    cr = tmp_path / "cr.jsonl"
    cr.write_bytes((GOOD + "\r" + GOOD + "\r" + GOOD + "\r").encode())
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes((GOOD + "\r\n" + GOOD + "\r\n").encode())
    for path, n in ((bom, 2), (cr, 3), (crlf, 2)):
        log, summary = read_events(path)
        assert (len(log), summary.rejected) == (n, 0), path.name


def test_the_milliseconds_hint_is_only_for_times_in_milliseconds(tmp_path):
    from app.data.schema import BadEvent, parse_ts

    with pytest.raises(BadEvent, match="milliseconds"):
        parse_ts(1_700_000_000_000)
    with pytest.raises(BadEvent) as err:
        parse_ts(4_000_000_000)  # the year 2096: in the future, but not milliseconds
    assert "milliseconds" not in err.value.message
