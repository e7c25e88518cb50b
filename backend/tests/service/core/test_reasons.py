"""Reason texts from engines' explanations: history items, named parts, and what is left to say."""

from __future__ import annotations

import numpy as np

from app.model.base import Explanation
from tests.service.modeldir import TITLES


def test_the_history_item_that_adds_most_names_the_reason(runtime):
    a1, a2, a3, c1 = (runtime.item_index(i) for i in ("a1", "a2", "a3", "c1"))
    expl = Explanation(np.array([a3, c1]), np.array([a1, a2]), np.array([[0.8, 0.0], [0.72, 0.1]]))
    row = runtime.history_row(runtime.user_index("u1"))
    assert runtime.reasons.explained(expl, row, "nn") == [
        [f"similar to {TITLES['a1']} you liked"],
        [f"similar to {TITLES['a2']} you liked"],
    ]
    assert runtime.reasons.explained(expl, row, "nn", liked=False)[0] == [f"similar to {TITLES['a1']}"]
    empty = Explanation(np.array([a3]), np.zeros(0, np.intp), np.zeros((0, 1)))
    assert runtime.reasons.explained(empty, row, "nn") == [["recommended for you"]]


def test_named_parts_come_largest_first_and_high_ratings_are_said(runtime):
    d1, c2 = runtime.item_index("d1"), runtime.item_index("c2")
    parts = {"genre_match": np.array([0.0, 0.3]), "popularity": np.array([0.5, 0.1]), "rating": np.array([0.2, 0.9])}
    row = runtime.history_row(runtime.user_index("u2"))  # u2 liked c1: Comedy is their genre
    got = runtime.reasons.explained(Explanation(np.array([d1, c2]), features=parts), row, "baseline")
    # d1: popularity .5 > rating .2 (avg 4.2: highly rated); c2: rating .9 is not said (no average rating), .3 > .1
    assert got == [["popular in Drama", "highly rated (4.2/5)"], ["matches your genres", "popular in Comedy"]]


def test_an_engine_that_says_nothing_is_named(runtime):
    assert runtime.reasons.explained(Explanation(np.array([0])), runtime.history_row(0), "als") == [
        ["recommended by als"]
    ]


def test_popular_reasons_follow_the_requested_genres(runtime):
    a4 = runtime.item_index("a4")
    comedy = np.array([runtime.catalogue.genre_index("Comedy")])
    assert runtime.reasons.popular(np.array([a4])) == [["popular overall"]]
    assert runtime.reasons.popular(np.array([a4]), comedy) == [["popular in Comedy"]]
    assert runtime.reasons.popular(np.array([a4]), comedy, trending=True) == [["trending"]]
