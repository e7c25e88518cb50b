"""The JSONL line formats (interaction events, catalogue items) and their validation rules.

``check_event`` is the fast path the log reader runs on every line (plain Python, no model object per
line); ``EventIn`` wraps the same rules in Pydantic for the HTTP boundary (``POST /events``), so a
line the reader rejects is also a request the API rejects, with the same reason.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.config import DEFAULT_EVENT_WEIGHTS

#: Earliest accepted event time: 1990-01-01T00:00:00Z (older values are almost always a unit bug).
MIN_TS = 631_152_000
#: Events may be at most this far in the future (clock skew between devices).
MAX_FUTURE_SECONDS = 86_400
RATING_MIN, RATING_MAX = 1.0, 5.0
REQUIRED_FIELDS = ("user_id", "item_id", "event", "ts")
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(DEFAULT_EVENT_WEIGHTS)

# ----- ids: one set of rules for the log reader, the catalogue and every API that takes an id
MAX_ID_LENGTH = 128
#: ASCII and C1 control characters (a newline, a NUL): never part of an id.
ID_FORBIDDEN = r"[\x00-\x1f\x7f-\x9f]"
_FORBIDDEN = re.compile(ID_FORBIDDEN)
#: Values that are template defaults, not data (compared case-insensitively, stripped): clients generated
#: from an API page tend to send its examples unchanged.
PLACEHOLDERS = frozenset({"string", "str", "null", "none", "undefined", "nan", "<string>", "example", "changeme"})
_LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDERS))


class BadEvent(ValueError):
    """A line that fails validation; ``code`` is the summary bucket, the message says what to fix."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_id(name: str, value: Any) -> str:
    """An id as stored: a string or an integer, stripped, 1 to ``MAX_ID_LENGTH`` characters, no control
    characters, not a placeholder; ``BadEvent`` saying which rule failed."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadEvent("wrong_type", f"{name} must be a string or an integer, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise BadEvent("missing_field", f"{name} is empty")
    if len(text) > MAX_ID_LENGTH:
        raise BadEvent("id_too_long", f"{name} is {len(text)} characters long; ids have at most {MAX_ID_LENGTH}")
    if _FORBIDDEN.search(text):
        raise BadEvent("bad_id", f"{name} {text[:40]!r} contains a control character (a newline, a NUL, ...)")
    if len(text) <= _LONGEST_PLACEHOLDER and text.lower() in PLACEHOLDERS:
        raise BadEvent("placeholder_id", f"{name} {text!r} is a placeholder value, not real data")
    return text


def _id(obj: Mapping[str, Any], name: str) -> str:
    return check_id(name, obj[name])


def parse_ts(value: Any, now: float | None = None) -> int:
    """Unix seconds (int or float) or an ISO 8601 string (naive means UTC) -> int Unix seconds, range-checked."""
    if isinstance(value, bool):
        raise BadEvent("wrong_type", "ts must be Unix seconds or an ISO 8601 string, got bool")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadEvent("ts_out_of_range", f"ts {value} is not a finite number")
        ts = int(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadEvent("invalid_ts", f"ts {value!r} is not Unix seconds or an ISO 8601 date-time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ts = int(dt.timestamp())
    else:
        raise BadEvent("wrong_type", f"ts must be Unix seconds or an ISO 8601 string, got {type(value).__name__}")
    latest = (time.time() if now is None else now) + MAX_FUTURE_SECONDS
    if ts < MIN_TS or ts > latest:
        # the hint only for a number that is a time in milliseconds (not for any date in the future)
        hint = " (milliseconds? ts must be in seconds)" if MIN_TS <= ts / 1000 <= latest else ""
        raise BadEvent(
            "ts_out_of_range",
            f"ts {ts} is outside 1990-01-01 .. now + 1 day{hint}",
        )
    return ts


def _number(obj: Mapping[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadEvent("wrong_type", f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise BadEvent(f"{name}_out_of_range", f"{name} must be a finite number")
    return value


def check_event(
    obj: Any, event_types: Collection[str] = KNOWN_EVENT_TYPES, now: float | None = None
) -> tuple[str, str, str, int, float | None, float | None, str]:
    """Validate one decoded JSON line; returns (user_id, item_id, event, ts, rating, weight, platform).

    Raises ``BadEvent`` with a code (missing_field, wrong_type, unknown_event, invalid_ts,
    ts_out_of_range, rating_out_of_range, missing_rating, weight_out_of_range, not_an_object).
    """
    if not isinstance(obj, dict):
        raise BadEvent("not_an_object", f"a line must be a JSON object, got {type(obj).__name__}")
    missing = [f for f in REQUIRED_FIELDS if obj.get(f) is None]
    if missing:
        raise BadEvent("missing_field", f"missing field(s): {', '.join(missing)}")
    user_id = _id(obj, "user_id")
    item_id = _id(obj, "item_id")
    event = obj["event"]
    if not isinstance(event, str):
        raise BadEvent("wrong_type", f"event must be a string, got {type(event).__name__}")
    if event not in event_types:
        raise BadEvent("unknown_event", f"unknown event type {event!r}; known: {', '.join(sorted(event_types))}")
    ts = parse_ts(obj["ts"], now)
    rating = _number(obj, "rating")
    if rating is not None and not RATING_MIN <= rating <= RATING_MAX:
        raise BadEvent("rating_out_of_range", f"rating {rating:g} is outside {RATING_MIN:g}-{RATING_MAX:g}")
    if event == "rating" and rating is None:
        raise BadEvent("missing_rating", "a 'rating' event needs a numeric rating field (1-5)")
    weight = _number(obj, "weight")
    if weight is not None and weight <= 0:
        raise BadEvent("weight_out_of_range", f"weight must be > 0, got {weight:g}")
    platform = obj.get("platform")
    if platform is None:
        platform = ""
    elif not isinstance(platform, str):
        raise BadEvent("wrong_type", f"platform must be a string, got {type(platform).__name__}")
    return user_id, item_id, event, ts, rating, weight, platform


class EventIn(BaseModel):
    """One interaction event, as accepted by the log reader and by ``POST /events``.

    The set of accepted event types can be narrowed or widened through the validation context:
    ``EventIn.model_validate(obj, context={"event_types": {...}})``.
    """

    model_config = ConfigDict(extra="ignore")

    user_id: str
    item_id: str
    event: str
    ts: int = Field(description="Unix seconds; ISO 8601 strings are converted")
    rating: float | None = Field(default=None, ge=RATING_MIN, le=RATING_MAX)
    weight: float | None = Field(default=None, gt=0)
    platform: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any, info: ValidationInfo) -> Any:
        types = (info.context or {}).get("event_types", KNOWN_EVENT_TYPES)
        try:
            user_id, item_id, event, ts, rating, weight, platform = check_event(data, types)
        except BadEvent as exc:
            raise ValueError(f"{exc.code}: {exc.message}") from None
        return {
            **data,
            "user_id": user_id,
            "item_id": item_id,
            "event": event,
            "ts": ts,
            "rating": rating,
            "weight": weight,
            "platform": platform or None,
        }


class ItemIn(BaseModel):
    """One catalogue line; fields beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    item_id: str
    title: str
    genres: list[str] = Field(default_factory=list)
    year: int | None = Field(default=None, ge=1800, le=2100)

    @field_validator("item_id", mode="before")
    @classmethod
    def _item_id(cls, value: Any) -> str:
        try:
            return check_id("item_id", value)  # the same id rule as the interaction log's
        except BadEvent as exc:
            raise ValueError(exc.message) from None

    @field_validator("genres", mode="before")
    @classmethod
    def _genres(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):  # "Action|Comedy", as MovieLens writes them
            return [g for g in value.split("|") if g]
        return value
