"""Item features that engines are fitted with beside the interactions: genres, average rating, last activity.

Built by training, evaluation and serving from the same functions, so a feature means the same thing
at every stage; the evaluation passes only what a model may see at its stage (``exclude``, ``before_ts``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.data.idmap import IdMap
from app.data.types import Dataset, EventLog


@dataclass
class ItemFeatures:
    """Side information some engines use (baseline heuristic, trending); all optional."""

    genres: sp.csr_matrix | None = None  # n_items x n_genres binary, columns in ``genre_names`` order
    genre_names: list[str] = field(default_factory=list)
    avg_rating: np.ndarray | None = None  # float32, NaN when unknown
    last_ts: np.ndarray | None = None  # int64 latest interaction per item


def genre_matrix(items: Sequence[str], catalogue: Mapping[str, Mapping[str, Any]]) -> tuple[sp.csr_matrix, list[str]]:
    """Binary items x genres matrix for ``items`` (in that order; unknown items have no genre) and the
    genre names, sorted (the column order)."""
    names = sorted({g for i in items for g in (catalogue.get(i) or {}).get("genres") or ()})
    col = {g: j for j, g in enumerate(names)}
    rows, cols = [], []
    for r, item in enumerate(items):
        for g in set((catalogue.get(item) or {}).get("genres") or ()):
            rows.append(r)
            cols.append(col[g])
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(len(items), len(names)),
    )
    m.sort_indices()
    return m, names


def item_features(
    items: Sequence[str],
    catalogue: Mapping[str, Mapping[str, Any]],
    avg_rating: np.ndarray | None = None,
    last_ts: np.ndarray | None = None,
) -> ItemFeatures:
    """``ItemFeatures`` for the fitted item order from a catalogue (item_id -> {genres, ...}) and per-item
    arrays; ``genres`` is None when no item has a genre."""
    genres, names = genre_matrix(items, catalogue)
    return ItemFeatures(genres=genres if names else None, genre_names=names, avg_rating=avg_rating, last_ts=last_ts)


def _event_is(events: EventLog, types: Collection[str]) -> np.ndarray:
    """Per event: whether its type is one of ``types``."""
    coded = events.coded("event")
    return np.isin(coded.names.astype(str), np.array(sorted(types), dtype=str))[coded.codes]


def _indices(events: EventLog, column: str, ids: IdMap, mask: np.ndarray) -> np.ndarray:
    """The masked events' indices in ``ids`` (-1 when absent): each distinct id is looked up once, so a
    20M-event log never builds a string per event."""
    coded = events.coded(column)
    return ids.indices(coded.names)[coded.codes[mask]]


def average_ratings(
    events: EventLog, dataset: Dataset, *, exclude: Dataset | None = None, before_ts: int | None = None
) -> np.ndarray:
    """Mean explicit rating per item of ``dataset`` (NaN when none), from events that a model may see.

    ``exclude``: held-out positives whose (user, item) ratings must not leak into the feature;
    ``before_ts``: only events strictly older (temporal protocol).
    """
    mask = _event_is(events, ["rating"]) & np.isfinite(events.rating)
    if before_ts is not None:
        mask &= events.ts < before_ts
    u = _indices(events, "user_id", dataset.users, mask)
    i = _indices(events, "item_id", dataset.items, mask)
    r = events.rating[mask].astype(np.float64)
    keep = i >= 0
    if exclude is not None and len(exclude):
        held = np.unique(exclude.user_idx.astype(np.int64) * dataset.n_items + exclude.item_idx)
        key = u * dataset.n_items + i
        keep &= ~((u >= 0) & np.isin(key, held))
    total = np.bincount(i[keep], weights=r[keep], minlength=dataset.n_items)
    count = np.bincount(i[keep], minlength=dataset.n_items)
    return np.divide(total, count, out=np.full(dataset.n_items, np.nan), where=count > 0).astype(np.float32)


def last_seen(dataset: Dataset) -> np.ndarray:
    """Latest positive timestamp per item (0 when the item has none)."""
    out = np.zeros(dataset.n_items, dtype=np.int64)
    if len(dataset):
        np.maximum.at(out, dataset.item_idx, dataset.ts)
    return out


def seen_matrix(events: EventLog, dataset: Dataset, seen_events: Collection[str] | None = None) -> sp.csr_matrix:
    """Users x items of ``dataset``: 1.0 where the user had any event of a type in ``seen_events``
    (None: every type), positive or not: a 1-star rating, a view, a skip or a dislike all mean the user
    has seen the item, so it is never recommended back. Users and items outside ``dataset`` are left out."""
    keep = np.ones(len(events), dtype=bool) if seen_events is None else _event_is(events, seen_events)
    u = _indices(events, "user_id", dataset.users, keep)
    i = _indices(events, "item_id", dataset.items, keep)
    ok = (u >= 0) & (i >= 0)
    m = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (u[ok], i[ok])), shape=(dataset.n_users, dataset.n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m
