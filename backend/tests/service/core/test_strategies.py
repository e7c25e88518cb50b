"""The request policy (``strategies``) on the runtime directly: engines, fallbacks, notes, seeds, caching."""

from __future__ import annotations

import pytest

from app.service.core import strategies
from app.service.core.filters import Filters
from app.service.core.fitted import EngineUnavailable
from app.service.core.strategies import UnknownItem
from tests.service.core.conftest import build_runtime
from tests.service.modeldir import TITLES, catalogue


def ids(result) -> list[str]:
    return [it["item_id"] for it in result.items]


def test_a_known_user_gets_the_models_list_without_their_history(runtime):
    r = strategies.recommend(runtime, "u1", 5)
    assert ids(r) == ["a3", "a4", "c1", "c2", "c3"]  # by u1 . item + bias: .762, .683, .054, .050, .046
    assert (r.engine, r.requested_engine, r.fallback_used, r.strategy) == ("nn", "auto", False, "personalised")
    assert r.total_candidates == 10 and r.notes == []
    assert r.items[0]["reasons"] == [f"similar to {TITLES['a1']} you liked"]
    assert ids(strategies.recommend(runtime, "u1", 3, exclude_seen=False)) == ["a1", "a2", "a3"]


def test_auto_falls_back_to_the_baseline_below_the_history_threshold(runtime):
    r = strategies.recommend(runtime, "u2", 3)  # one positive; the test settings need 2
    assert r.engine == "baseline" and r.fallback_used is True
    assert ids(r) == ["d1", "a1", "c2"] and any("fewer than 2" in n for n in r.notes)


def test_unknown_users_get_popular_items_and_a_note_that_says_why(runtime):
    r = strategies.recommend(runtime, "nobody", 3)
    assert ids(r) == ["d1", "a1", "c1"] and r.strategy == "popular" and r.fallback_used is True
    assert r.notes == ["user 'nobody' is unknown to the model"]
    r = strategies.recommend(runtime, "fresh", 3, user_is_new=True)
    assert "personalised recommendations start after the next training run" in r.notes[0]


def test_seed_items_stand_in_for_a_history(runtime):
    r = strategies.recommend(runtime, None, 3, seed_item_ids=("a1", "zzz"))
    assert ids(r) == ["a2", "a3", "a4"] and r.strategy == "seed_items" and r.fallback_used is False
    assert r.unknown_seed_item_ids == ["zzz"]
    assert r.items[0]["reasons"] == [f"similar to {TITLES['a1']}"]  # a seed, not "you liked"


def test_filters_and_a_short_list_say_how_many_items_were_left(runtime):
    r = strategies.recommend(runtime, "u3", 5, filters=Filters(genres=("Drama",)))
    assert ids(r) == ["d4", "c4"]  # u3 = [0, 0, .9] has seen d1, d2, d3: d4 .641, c4 .457
    assert (
        r.total_candidates == 2
        and r.notes[-1] == "only 2 item(s) are left after filters and exclusions; returning 2 of the 5 requested"
    )


def test_an_unknown_engine_and_an_unfitted_one_are_refused(runtime):
    with pytest.raises(EngineUnavailable, match="unknown engine"):
        strategies.recommend(runtime, "u1", 3, "word2vec")
    with pytest.raises(EngineUnavailable, match="not fitted yet"):
        strategies.recommend(runtime, "u1", 3, "als")


def test_popular_lists_are_cached_per_query_and_callers_get_their_own_notes(runtime):
    first = strategies.popular(runtime, 20, filters=Filters(genres=("Action",)))
    again = strategies.popular(runtime, 20, filters=Filters(genres=("Action",)))
    assert again.items is first.items and again.notes == first.notes and again.notes is not first.notes
    mine = strategies.popular(runtime, 20, filters=Filters(genres=("Action",)), user_id="u1", exclude_seen=True)
    assert ids(mine) == ["a3", "a4"] and mine.items is not first.items  # a user's history is never cached
    assert ids(first) == ["a1", "a2", "a3", "a4"]


def test_similar_items_exclude_the_item_and_unknown_items_say_why(model_dir, tmp_path):
    rt = build_runtime(model_dir, tmp_path, catalogue={**catalogue(), "x9": {"item_id": "x9", "title": "Extra"}})
    r = strategies.similar(rt, "a1", 3)
    assert ids(r) == ["a2", "a3", "a4"] and r.strategy == "similar_item"  # cosine .994, .970, .919
    assert r.items[0]["reasons"] == [f"similar to {TITLES['a1']}"]
    with pytest.raises(UnknownItem, match="in the catalogue but has no interactions"):
        strategies.similar(rt, "x9", 3)
    with pytest.raises(UnknownItem, match="logged since the model was trained"):
        strategies.similar(rt, "x10", 3, item_is_new=True)
