"""Which items a request may return: candidate filters (genres, years, excluded ids) and exclusions (seen items).

Filters become one boolean mask over the model's items, cached per genre and year combination;
exclusions stay index arrays (a user's seen items are a slice of the history CSR, used as they are).
Both go to ``app.model.base.top_k_row`` or cut a precomputed list; ``eligible`` counts what is left.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from app.data.idmap import IdMap
from app.service.core.catalogue import Catalogue

#: Filter masks (genres x year range) kept per loaded model; the cache is emptied when it is full.
MASK_CACHE_SIZE = 1024

NO_INDEX = np.zeros(0, dtype=np.intp)
NO_INDEX.flags.writeable = False

V = TypeVar("V")


@dataclass(frozen=True)
class Filters:
    """Candidate filters of a request, applied before the top-k cut (a filtered list is still k long
    when enough items match)."""

    genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_items: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.genres or self.year_min is not None or self.year_max is not None or self.exclude_items)


NO_FILTERS = Filters()


def parse_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Ids deduplicated in their order (requests may repeat an id)."""
    return tuple(dict.fromkeys(str(v) for v in values))


class BoundedCache(Generic[V]):
    """A dict of at most ``limit`` entries, emptied when full: clients repeat a few keys, and one cycling
    through many only costs the recomputation (no eviction bookkeeping on the request path)."""

    __slots__ = ("_data", "get", "limit")

    def __init__(self, limit: int):
        self._data: dict[Hashable, V] = {}
        self.limit = limit
        self.get = self._data.get

    def put(self, key: Hashable, value: V) -> V:
        if len(self._data) >= self.limit:
            self._data.clear()
        self._data[key] = value
        return value

    def __len__(self) -> int:
        return len(self._data)


class CandidateMasks:
    """Boolean masks over the model's items for ``Filters`` (None when nothing is filtered)."""

    def __init__(self, items: IdMap, catalogue: Catalogue):
        self.items = items
        self.catalogue = catalogue
        self._cache: BoundedCache[np.ndarray] = BoundedCache(MASK_CACHE_SIZE)

    def mask(self, filters: Filters) -> np.ndarray | None:
        """The cached genre and year part is read-only, so a request can never change another's mask;
        excluded ids make a copy."""
        if not filters.active:
            return None
        key: Any = (tuple(sorted(g.strip().lower() for g in filters.genres)), filters.year_min, filters.year_max)
        mask = self._cache.get(key)
        if mask is None:
            cat = self.catalogue
            mask = np.ones(cat.n_items, dtype=bool)
            if filters.genres:
                mask &= cat.genre_masks[cat.genre_columns(filters.genres)].any(axis=0)
            if filters.year_min is not None:
                mask &= cat.years >= filters.year_min  # unknown years (NaN) fail both bounds
            if filters.year_max is not None:
                mask &= cat.years <= filters.year_max
            mask.flags.writeable = False
            self._cache.put(key, mask)
        if filters.exclude_items:
            idx = self.items.indices(filters.exclude_items)
            mask = mask.copy()
            mask[idx[idx >= 0]] = False
        return mask


def exclusion(seen: np.ndarray | None, extra: np.ndarray | None = None) -> np.ndarray:
    """Unique indices of the items never to return (seen items, seed or query items); read-only."""
    if seen is None or seen.size == 0:
        return NO_INDEX if extra is None else extra
    return seen if extra is None or extra.size == 0 else np.union1d(seen, extra)


def eligible(mask: np.ndarray | None, exclude: np.ndarray, n_items: int) -> int:
    """Items that pass the filters and are not excluded (``exclude`` holds unique indices)."""
    if mask is None:
        return n_items - exclude.size
    return int(np.count_nonzero(mask)) - int(np.count_nonzero(mask[exclude]))
