"""The catalogue of the loaded model: records, details, genres, and title search."""

from __future__ import annotations

import numpy as np
import pytest

from app.service.core.catalogue import UnknownGenre, display_title
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


#: Hand-written MovieLens-style titles and how people read them (the web page's cards use the same rule).
DISPLAY_TITLES = [
    ("Star Wars (1977)", "Star Wars"),
    ("Usual Suspects, The (1995)", "The Usual Suspects"),
    ("Birdcage, The (1996)", "The Birdcage"),
    ("American President, An (1995)", "An American President"),
    (
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
        "The City of Lost Children (Cité des enfants perdus, La)",
    ),
    ("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "Shanghai Triad (Yao a yao yao dao waipo qiao)"),
    ("Misérables, Les (1995)", "Les Misérables"),
    ("Toy Story (1995) ", "Toy Story"),
    ("2001: A Space Odyssey (1968)", "2001: A Space Odyssey"),
    ("Seven (Se7en) (1995)", "Seven (Se7en)"),
    (
        "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)",
        "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb",
    ),
    ("Alpha Strike", "Alpha Strike"),  # already clean: unchanged
    ("Kids, The", "The Kids"),
    ("Apollo 13 (film)", "Apollo 13 (film)"),  # not a year
    ("(1995)", "(1995)"),  # only a year: kept
]


@pytest.mark.parametrize(("raw", "shown"), DISPLAY_TITLES)
def test_display_title_drops_the_year_and_puts_the_article_first(raw, shown):
    assert display_title(raw) == shown


def test_reason_texts_name_items_by_their_display_titles(model_dir, tmp_path):
    records = catalogue()
    records["a1"] = {**records["a1"], "title": "Usual Suspects, The (1995)"}
    records["a2"] = {**records["a2"], "title": "Star Wars (1977)"}
    rt = build_runtime(model_dir, tmp_path, catalogue=records)
    a1, a2 = rt.item_index("a1"), rt.item_index("a2")
    cat = rt.catalogue
    assert cat.titles[a1] == "Usual Suspects, The (1995)"  # responses keep the catalogue's title
    assert cat.display_titles[a1] == "The Usual Suspects"
    assert rt.reasons.similar_to(np.array([a1, a2]), liked=True) == [
        ["similar to The Usual Suspects you liked"],
        ["similar to Star Wars you liked"],
    ]
    assert rt.reasons.similar_to(np.array([a2])) == [["similar to Star Wars"]]
