"""The catalogue of the loaded model: records, details, genres, and title search."""

from __future__ import annotations

import pytest

from app.service.core.catalogue import UnknownGenre
from tests.service.core.conftest import build_runtime
from tests.service.modeldir import catalogue


def test_details_of_an_item_in_the_model_and_of_one_only_in_the_catalogue(model_dir, tmp_path):
    rt = build_runtime(
        model_dir, tmp_path, catalogue={**catalogue(), "x9": {"item_id": "x9", "title": "Extra", "mood": "calm"}}
    )
    d1 = rt.item_details("d1")
    assert (d1["popularity"], d1["popularity_rank"], d1["avg_rating"], d1["in_model"]) == (5, 1, 4.2, True)
    assert rt.item_details("a1")["popularity_rank"] == 2
    extra = rt.item_details("x9")
    assert extra["in_model"] is False and extra["popularity"] == 0 and extra["mood"] == "calm"
    assert rt.item_details("zzz") is None


def test_the_genre_to_name_prefers_the_given_columns(runtime):
    cat = runtime.catalogue
    a4 = runtime.item_index("a4")  # Action and Comedy
    assert cat.item_genre(a4) == "Action" and cat.item_genre(a4, [cat.genre_index("comedy")]) == "Comedy"
    with pytest.raises(UnknownGenre) as err:
        cat.genre_index("western", "seed_genres")
    assert err.value.field == "seed_genres"


def test_search_puts_title_prefixes_first_then_popular_items(runtime):
    items, total = runtime.catalogue.search("l", None, 3)
    assert total == 7 and items[0]["item_id"] == "d1"  # "Long Night" is the only title starting with "l"
    assert items[1]["item_id"] == "a1"  # then by popularity: a1 4
    items, total = runtime.catalogue.search(None, "Drama", 10)
    assert [it["item_id"] for it in items][:2] == ["d1", "d2"] and total == 5
    with pytest.raises(UnknownGenre):
        runtime.catalogue.search(None, "Western", 3)
