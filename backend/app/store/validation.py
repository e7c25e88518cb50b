"""Request bodies of the logging endpoints and the checks that keep junk out of the logs.

Clients generated from the OpenAPI page tend to send its example values unchanged (``"string"``,
``ts: 0``); those are rejected with a reason instead of polluting the metrics.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.data.schema import MAX_ID_LENGTH, PLACEHOLDERS, BadEvent, parse_ts
from app.data.schema import check_id as check_data_id

MAX_SHORT_LENGTH = 64  # action types, event types, platforms
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_not_placeholder(name: str, value: str) -> str:
    if value.strip().lower() in PLACEHOLDERS:
        raise ValueError(f"{name} {value!r} is a placeholder value, not real data: send the actual {name}")
    return value


def check_id(name: str, value: Any, max_length: int = MAX_ID_LENGTH) -> str:
    """The log reader's id rule (``app.data.schema.check_id``) as a ``ValueError`` for Pydantic; a
    shorter ``max_length`` for ids of our own (recset ids)."""
    try:
        text = check_data_id(name, value)
    except BadEvent as exc:
        raise ValueError(exc.message) from None
    if len(text) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    return text


def check_short(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_SHORT_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_SHORT_LENGTH} characters")
    return check_not_placeholder(name, text)


def check_ts(value: Any, now: float | None = None) -> float:
    """Unix seconds or ISO 8601; 0 and other out-of-range values are rejected with the reason."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("ts must be a finite number of Unix seconds")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        raise ValueError("ts=0 is a placeholder, not a time: send Unix seconds, or omit ts to use the server time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        parse_ts(int(value), now)  # range check with the data layer's rules and messages
        return float(value)
    try:
        return float(parse_ts(value, now))
    except BadEvent as exc:
        raise ValueError(exc.message) from None


class EngagementIn(BaseModel):
    """What a user did with an item of a recommended list (``recset_id`` from the response)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "recset_id": "3f0c8f4e-9a51-4b9e-8d37-1c2b8a5e6f10",
                    "user_id": "42",
                    "item_id": "50",
                    "action_type": "click",
                    "platform": "web",
                }
            ]
        },
    )

    recset_id: str = Field(description="the recset_id of the recommendation response (UUID)")
    user_id: str = Field(description="the user the list was shown to")
    item_id: str = Field(description="the item acted on (an item outside the list is stored and flagged)")
    action_type: str = Field(description="click, like, watch, add_to_playlist, dislike, ...")
    platform: str | None = Field(default=None, description="web, ios, android, tv, ...")
    ts: float | None = Field(default=None, description="Unix seconds or ISO 8601; default: server time")
    withdraw: bool = Field(
        default=False,
        description="true: take back the user's latest active engagement of this action_type with this item "
        "(undo a like); 404 when there is none",
    )

    @field_validator("recset_id", mode="before")
    @classmethod
    def _recset_id(cls, value: Any) -> str:
        text = check_id("recset_id", value, 64)
        try:
            uuid.UUID(text)
        except ValueError:
            raise ValueError(
                f"recset_id {text!r} is not a UUID: send the recset_id of a recommendation response"
            ) from None
        return text.lower()

    @field_validator("user_id", "item_id", mode="before")
    @classmethod
    def _ids(cls, value: Any, info) -> str:
        return check_id(info.field_name, value)

    @field_validator("action_type", mode="before")
    @classmethod
    def _action(cls, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("action_type must be a string")
        text = check_short("action_type", value.strip().lower())
        if text is None or not _NAME.match(text):
            raise ValueError("action_type must be a lower-case name such as click, like, watch, add_to_playlist")
        return text

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise ValueError("platform must be a string")
        return check_short("platform", value)

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> float | None:
        return None if value is None else check_ts(value, time.time())
