"""Read the item catalogue (JSONL, one ``ItemIn`` per line) into a dict keyed by item ID."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from app.data.events import IngestError, PathLike, _lines
from app.data.schema import ItemIn

log = logging.getLogger(__name__)


def read_items(path: PathLike, *, strict: bool = True) -> dict[str, dict[str, Any]]:
    """item_id -> {item_id, title, genres, year, ...extra fields}, in file order.

    The catalogue is small and hand-maintained, so a bad or duplicate line raises ``IngestError``
    (file, line, reason) by default; ``strict=False`` logs and skips it instead (a duplicate ID
    keeps the first line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: item catalogue not found")
    items: dict[str, dict[str, Any]] = {}
    for lineno, raw in _lines(path):
        if not raw.strip():
            continue
        try:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"a line must be a JSON object, got {type(obj).__name__}")
            item = ItemIn.model_validate(obj).model_dump()
            if item["item_id"] in items:
                raise ValueError(f"duplicate item_id {item['item_id']!r}")
        except (ValueError, ValidationError) as exc:
            reason = _short(exc)
            if strict:
                raise IngestError(str(path), lineno, reason) from None
            log.warning("%s:%d: skipped catalogue line: %s", path, lineno, reason)
            continue
        items[item["item_id"]] = item
    return items


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
    return str(exc)
