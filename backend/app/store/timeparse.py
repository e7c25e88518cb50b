"""Time arguments of the metrics endpoints and CLI: Unix seconds, ISO 8601 date-times, or dates (UTC)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime


def parse_time(value: str | float | int) -> float:
    """``1767225600``, ``2026-01-01`` (midnight UTC) or ``2026-01-01T12:00:00+01:00`` -> Unix seconds.

    Raises ``ValueError`` with what to send instead.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = float(value)
    else:
        text = str(value).strip()
        try:
            out = float(text)
        except ValueError:
            try:
                if len(text) == 10:
                    d = date.fromisoformat(text)
                    dt = datetime(d.year, d.month, d.day, tzinfo=UTC)
                else:
                    dt = datetime.fromisoformat(text)
                    if dt.tzinfo is None:
                        dt = dt.replace(tzinfo=UTC)
            except ValueError:
                raise ValueError(f"{text!r} is not Unix seconds, an ISO 8601 date (YYYY-MM-DD) or date-time") from None
            out = dt.timestamp()
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{value!r} is not a time (Unix seconds must be finite and >= 0)")
    return out


def day_start(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
