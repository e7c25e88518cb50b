"""Turn raw events into implicit positives: one weighted row per (user, item) pair.

Pure NumPy: event weights are looked up per event type once, pairs are grouped with ``np.unique``,
weights summed with ``np.bincount`` and the latest timestamp kept with ``np.maximum.at``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from app.config import DEFAULT_EVENT_WEIGHTS
from app.data.types import Coded, EventLog, Positives

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PositiveRule:
    """When an event is a positive and how much it weighs: the one rule of training, the store, replay and PaC.

    An event's weight is its type's weight (``weights``), or its explicit ``weight`` field when it has
    one; a ``rating`` event weighs 0 below ``rating_threshold`` (and without a rating), whatever its
    weight; a type missing from ``weights`` weighs 0 unless the event has an explicit weight. Weight
    0 means "accepted and stored, never a positive" (dislike, skip by default)."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    rating_threshold: float = 4.0

    def weight(self, event: str, rating: float | None = None, weight: float | None = None) -> float:
        """The weight of one event (0: not a positive)."""
        if event == "rating" and not (rating is not None and rating >= self.rating_threshold):
            return 0.0
        if weight is not None and not math.isnan(weight):
            return float(weight)
        return float(self.weights.get(event, 0.0))

    def is_positive(self, event: str, rating: float | None = None, weight: float | None = None) -> bool:
        return self.weight(event, rating, weight) > 0

    @property
    def positive_types(self) -> frozenset[str]:
        """Event types that are positives by their type weight (what an engagement counts as a hit)."""
        return frozenset(name for name, w in self.weights.items() if w > 0)

    def event_weights(self, log_: EventLog) -> np.ndarray:
        """``weight`` of every event of a log, vectorised (float32, 0 = not a positive)."""
        n = len(log_)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        kinds = log_.coded("event")
        table = np.array([float(self.weights.get(k, 0.0)) for k in kinds.names], dtype=np.float32)
        used = np.bincount(kinds.codes, minlength=len(kinds.names)) > 0
        unknown = sorted(k for k in kinds.names[used].tolist() if k not in self.weights)
        if unknown:
            log.info("event types without a weight (never positives): %s", ", ".join(unknown))
        w = table[kinds.codes]
        explicit = ~np.isnan(log_.weight)
        w[explicit] = log_.weight[explicit]
        rating = (kinds.names == "rating")[kinds.codes]
        w[rating & ~(log_.rating >= self.rating_threshold)] = 0.0  # NaN ratings are not positives
        return w


def event_weights(log_: EventLog, weights: Mapping[str, float], rating_threshold: float) -> np.ndarray:
    """Weight of every event (0 = not a positive), by ``PositiveRule``."""
    return PositiveRule(weights, rating_threshold).event_weights(log_)


def to_positives(
    log_: EventLog,
    weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS,
    rating_threshold: float = 4.0,
) -> Positives:
    """Aggregate events into positives, sorted by (user_id, item_id): summed weight, latest ts."""
    w = event_weights(log_, weights, rating_threshold)
    keep = w > 0
    if not keep.any():
        empty = np.empty(0, dtype=object)
        return Positives(empty, empty.copy(), np.zeros(0, np.float32), np.zeros(0, np.int64))
    users, u = _sorted_ids(log_.coded("user_id"), keep)
    items, i = _sorted_ids(log_.coded("item_id"), keep)
    key = u * len(items) + i
    pairs, group = np.unique(key, return_inverse=True)
    group = group.reshape(-1)
    weight = np.bincount(group, weights=w[keep].astype(np.float64), minlength=len(pairs)).astype(np.float32)
    ts = np.full(len(pairs), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(ts, group, log_.ts[keep])
    return Positives(
        user_id=users[pairs // len(items)],
        item_id=items[pairs % len(items)],
        weight=weight,
        ts=ts,
    )


def _sorted_ids(column: Coded, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of the kept rows, sorted (an object array of str), and each kept row's
    index among them (int64): ``np.unique(values[keep], return_inverse=True)``, sorting each distinct
    string once."""
    codes = column.codes[keep]
    present = np.flatnonzero(np.bincount(codes, minlength=len(column.names)))
    order = np.argsort(column.names[present].astype(str), kind="stable")
    rank = np.empty(len(column.names), np.int64)
    rank[present[order]] = np.arange(present.size)
    return column.names[present[order]], rank[codes]


def parse_weights(value: str | None) -> dict[str, float]:
    """Event weights from a CLI flag: a JSON object string or a path to a JSON file.

    The given mapping is laid over ``DEFAULT_EVENT_WEIGHTS`` (so ``{"view": 0.5}`` changes only
    views, and new event types become accepted); ``None`` or ``""`` gives the defaults. Weights must
    be numbers >= 0 (0 = accepted but never a positive). Raises ``ValueError`` saying what to fix.
    """
    merged = dict(DEFAULT_EVENT_WEIGHTS)
    if value is None or not str(value).strip():
        return merged
    text = str(value).strip()
    source = "weights"
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"event weights: {text!r} is neither a JSON object nor an existing JSON file")
        source = str(path)
        text = path.read_text(encoding="utf-8")
    try:
        mapping = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"event weights ({source}): invalid JSON: {exc}") from None
    if not isinstance(mapping, dict):
        raise ValueError(f'event weights ({source}): expected a JSON object like {{"view": 1, "like": 4}}')
    for name, weight in mapping.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"event weights ({source}): weight of {name!r} must be a number >= 0, got {weight!r}")
        merged[str(name)] = float(weight)
    return merged
