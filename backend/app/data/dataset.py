"""Index positives with contiguous user and item IDs: the ``Dataset`` every model is fitted on."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

from app.config import DEFAULT_EVENT_WEIGHTS
from app.data.aggregate import to_positives
from app.data.events import IngestSummary, PathLike, read_events
from app.data.idmap import IdMap
from app.data.types import Dataset, EventLog, Positives

log = logging.getLogger(__name__)


def _index(ids: IdMap | Iterable[str] | None, values: np.ndarray) -> tuple[IdMap, np.ndarray]:
    """The map (without one: the sorted distinct values, so the same data always gives the same
    indices) and the index of each value in it (-1 when absent): one sort, one dict lookup per
    distinct value."""
    uniq, inverse = np.unique(values.astype(str), return_inverse=True)
    if ids is None:
        return IdMap(uniq.tolist()), inverse.reshape(-1).astype(np.int64)
    idmap = ids if isinstance(ids, IdMap) else IdMap(list(ids))
    return idmap, idmap.indices(uniq.tolist())[inverse.reshape(-1)]


def build_dataset(
    positives: Positives,
    users: IdMap | Iterable[str] | None = None,
    items: IdMap | Iterable[str] | None = None,
) -> Dataset:
    """Index positives. Without maps, users/items are the sorted distinct IDs of the positives.

    Given maps (e.g. a saved model's, or the whole catalogue so items nobody touched still get an
    index) are used as they are; positives whose user or item is not in them are dropped and counted
    in the log.
    """
    user_map, u = _index(users, positives.user_id)
    item_map, i = _index(items, positives.item_id)
    keep = (u >= 0) & (i >= 0)
    if not keep.all():
        log.warning(
            "build_dataset: dropped %d positives whose user or item is not in the given maps", int((~keep).sum())
        )
    return Dataset(
        users=user_map,
        items=item_map,
        user_idx=u[keep].astype(np.int32),
        item_idx=i[keep].astype(np.int32),
        weight=positives.weight[keep].astype(np.float32),
        ts=positives.ts[keep].astype(np.int64),
    )


class LoadedLog(NamedTuple):
    dataset: Dataset  # the positives, indexed
    events: EventLog  # the accepted events they came from (ratings for item features)
    summary: IngestSummary  # what happened to every line


def load_dataset(
    data_path: PathLike | Iterable[PathLike],
    *,
    weights: Mapping[str, float] | None = None,
    rating_threshold: float = 4.0,
    strict: bool = False,
    rejects_path: PathLike | None = None,
    progress: bool | None = None,
) -> LoadedLog:
    """Read a log (file, .gz or directory), aggregate and index it: what training and evaluation start from.

    ``weights`` are laid over ``DEFAULT_EVENT_WEIGHTS``; their keys are the accepted event types.
    ``progress``: as ``read_events``'s (None: a bar for large inputs when stderr is a terminal).
    """
    merged = {**DEFAULT_EVENT_WEIGHTS, **(weights or {})}
    events, summary = read_events(
        data_path, strict=strict, rejects_path=rejects_path, event_types=merged.keys(), progress=progress
    )
    return LoadedLog(build_dataset(to_positives(events, merged, rating_threshold)), events, summary)
