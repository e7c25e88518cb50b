"""The request policy (``strategies``) on the runtime directly: engines, fallbacks, notes, seeds, caching,
diversity."""

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


DIVERSITY_NOTE = "diversity 1: picked from the best {} candidates, items much like those above them moved down"


def test_diversity_zero_changes_nothing(runtime):
    for user in ("u1", "u4", "nobody"):
        plain, zero = strategies.recommend(runtime, user, 4), strategies.recommend(runtime, user, 4, diversity=0.0)
        assert zero.items == plain.items and zero.notes == plain.notes
    assert strategies.similar(runtime, "a1", 3, diversity=0.0).items == strategies.similar(runtime, "a1", 3).items


def test_full_diversity_picks_each_item_unlike_those_above_it(runtime):
    """Cosines in the embeddings (modeldir.py): to a3 (.8, 0, .2) the Comedy items 0, the Drama ones .243,
    a4 .892; after a3 and c1 the Drama items are the least like either (.243), d4 the best scored of them."""
    r = strategies.recommend(runtime, "u1", 3, diversity=1.0)
    assert ids(r) == ["a3", "c1", "d4"]  # the plain list: a3, a4, c1
    assert r.items[1]["score"] == pytest.approx(0.054, abs=1e-5) and [it["rank"] for it in r.items] == [1, 2, 3]
    assert r.notes == [DIVERSITY_NOTE.format(10)] and r.total_candidates == 10  # the 10 unseen items are the pool
    assert r.items[1]["reasons"] == [f"similar to {TITLES['a2']} you liked"]


def test_popular_and_similar_lists_are_diversified_too(runtime):
    # popular: d1, a1, c1, then a2 (count 1, first by index); with diversity c4 (cosine .707 to c1 and d1)
    # is the item least like those above it: a2 is at .994 to a1, c2 1 to c1, d2 1 to d1
    assert ids(strategies.recommend(runtime, "nobody", 4)) == ["d1", "a1", "c1", "a2"]
    r = strategies.recommend(runtime, "nobody", 4, diversity=1.0)
    assert ids(r) == ["d1", "a1", "c1", "c4"] and r.notes[-1] == DIVERSITY_NOTE.format(12)
    # similar to a1: a2 (.994) first, then a Drama item (cosine 0 to a2; d1 first by index), then c1 (.110)
    r = strategies.similar(runtime, "a1", 3, diversity=1.0)
    assert ids(r) == ["a2", "d1", "c1"] and r.notes == [DIVERSITY_NOTE.format(11)]


def test_seed_genres_are_diversified_first_and_the_popular_rest_after_them(runtime):
    # Comedy (seed genre) by popularity: c1 3, c2 1, then a4 c3 c4; one more popular overall: d1.
    # Diversified: after c1, a4 (cosine .394 to it), then c4 (.707), then c2 and c3 (1; c2 more popular)
    plain = strategies.recommend(runtime, "nobody", 6, seed_genres=("Comedy",))
    assert ids(plain) == ["c1", "c2", "a4", "c3", "c4", "d1"]
    r = strategies.recommend(runtime, "nobody", 6, seed_genres=("Comedy",), diversity=1.0)
    assert ids(r) == ["c1", "a4", "c4", "c2", "c3", "d1"] and r.strategy == "seed_genres"
    assert DIVERSITY_NOTE.format(5) in r.notes


def test_diversified_lists_keep_the_filters_and_exclusions(runtime):
    """With k above the number of eligible items a diversified list holds exactly the plain list's items."""
    f = Filters(genres=("Drama", "Comedy"), exclude_items=("c4",))
    for user in ("u1", "u3", "u7", "nobody"):
        for engine in ("auto", "nn", "baseline", "popular"):
            plain = strategies.recommend(runtime, user, 12, engine, filters=f)
            mixed = strategies.recommend(runtime, user, 12, engine, filters=f, diversity=0.7)
            assert sorted(ids(mixed)) == sorted(ids(plain)) and "c4" not in ids(mixed), (user, engine)
            assert mixed.total_candidates == plain.total_candidates
    r = strategies.similar(runtime, "a1", 12, filters=Filters(year_min=1995), diversity=0.7)
    assert sorted(ids(r)) == sorted(ids(strategies.similar(runtime, "a1", 12, filters=Filters(year_min=1995))))
