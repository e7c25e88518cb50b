"""Candidate masks, exclusions, eligible counts and the bounded cache, against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from app.service.core.catalogue import UnknownGenre
from app.service.core.filters import BoundedCache, Filters, eligible, exclusion, parse_ids


def names(runtime, mask) -> list[str]:
    return [runtime.items.id(i) for i in np.flatnonzero(mask)]


def test_no_filter_is_no_mask(runtime):
    assert not Filters().active and runtime.masks.mask(Filters()) is None


def test_genres_are_any_of_and_years_drop_unknown_years(runtime):
    assert names(runtime, runtime.masks.mask(Filters(genres=("comedy",)))) == ["a4", "c1", "c2", "c3", "c4"]
    # c4 has no year, so any year bound drops it
    assert names(runtime, runtime.masks.mask(Filters(genres=("Comedy",), year_min=1990, year_max=1995))) == ["c1", "c2"]
    with pytest.raises(UnknownGenre, match="known genres: Action, Comedy, Drama"):
        runtime.masks.mask(Filters(genres=("Western",)))


def test_excluded_ids_never_reach_the_cached_mask(runtime):
    base = runtime.masks.mask(Filters(genres=("Drama",)))
    with_exclusion = runtime.masks.mask(Filters(genres=("Drama",), exclude_items=("d1", "zzz")))
    assert names(runtime, with_exclusion) == ["c4", "d2", "d3", "d4"]
    assert (
        names(runtime, runtime.masks.mask(Filters(genres=("Drama",))))
        == names(runtime, base)
        == ["c4", "d1", "d2", "d3", "d4"]
    )
    assert not base.flags.writeable


def test_exclusions_and_eligible_counts():
    seen = np.array([1, 4])
    assert exclusion(None).size == 0 and exclusion(seen) is seen
    assert exclusion(seen, np.array([2, 4])).tolist() == [1, 2, 4]
    mask = np.array([True, True, False, True, True, False])
    assert eligible(None, seen, 6) == 4
    assert eligible(mask, seen, 6) == 2  # 4 pass the mask, 2 of them are excluded


def test_bounded_cache_empties_when_full_and_ids_keep_their_first_order():
    cache: BoundedCache[int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1 and len(cache) == 2
    cache.put("c", 3)
    assert cache.get("a") is None and cache.get("c") == 3 and len(cache) == 1
    assert parse_ids(["b", "a", "b", 7]) == ("b", "a", "7")
