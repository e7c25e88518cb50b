"""Item catalogue: fields, extras kept, clear errors on bad lines."""

from __future__ import annotations

import gzip

import pytest

from app.data.catalog import read_items
from app.data.events import IngestError


def test_fields_extras_and_genre_strings(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"item_id": 7, "title": "The Silent Harbor", "genres": ["Drama"], "year": 1999, "duration_min": 101}\n'
        "\n"
        '{"item_id": "b", "title": "Echo", "genres": "Action|Sci-Fi"}\n'
    )
    items = read_items(path)
    assert list(items) == ["7", "b"]
    assert items["7"] == {
        "item_id": "7",
        "title": "The Silent Harbor",
        "genres": ["Drama"],
        "year": 1999,
        "duration_min": 101,
    }
    assert items["b"] == {"item_id": "b", "title": "Echo", "genres": ["Action", "Sci-Fi"], "year": None}
    gz = tmp_path / "items.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_items(gz) == items


@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"item_id": "a", "title": "A"', "invalid JSON"),
        ('["a"]', "JSON object"),
        ('{"title": "A"}', "item_id"),
        ('{"item_id": "a"}', "title"),
        ('{"item_id": "a", "title": "A", "year": "old"}', "year"),
        ('{"item_id": "a", "title": "A", "year": 1066}', "year"),
        ('{"item_id": "a", "title": "A", "genres": [1]}', "genres"),
        ('{"item_id": "x", "title": "dup"}', "duplicate item_id"),
    ],
)
def test_bad_lines(tmp_path, line, reason):
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "x", "title": "X"}\n' + line + "\n")
    with pytest.raises(IngestError, match=reason) as err:
        read_items(path)
    assert err.value.line == 2 and err.value.file == str(path)
    assert list(read_items(path, strict=False)) == ["x"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="item catalogue not found"):
        read_items(tmp_path / "nope.jsonl")
