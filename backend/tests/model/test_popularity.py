"""Most popular and trending, by hand, and the explanation: the whole score is popularity."""

from __future__ import annotations

import numpy as np
import pytest

from app.data.features import ItemFeatures
from app.model.popularity import PopularityRecommender, trending_scores
from tests.model.small import SMALL, row


def test_popularity_and_trending_hand_checked():
    pop = PopularityRecommender().fit(SMALL)
    assert pop.score(np.array([0, 1]), SMALL[:2]).tolist() == [[3, 3, 2], [3, 3, 2]]  # users per item
    # trending: latest interaction 0, 2, 2 days; reference = newest (2 days); half-life 1 day ->
    # decay 2^-2 = 0.25, 1, 1 -> scores 0.75, 3, 2
    feats = ItemFeatures(last_ts=np.array([0, 2 * 86400, 2 * 86400]))
    trend = PopularityRecommender(half_life_days=1.0).fit(SMALL, feats)
    assert trend.score(np.array([0]), SMALL[:1])[0] == pytest.approx([0.75, 3.0, 2.0])
    # an explicit "now" one day later halves every item again: 0.375, 1.5, 1.0
    later = PopularityRecommender(half_life_days=1.0, now=3 * 86400).fit(SMALL, feats)
    assert later.score(np.array([0]), SMALL[:1])[0] == pytest.approx([0.375, 1.5, 1.0])
    # exact per-event version: item 0 events 1 and 2 days old (0.5 + 0.25), item 1 one event now
    got = trending_scores(np.array([0, 0, 1]), np.array([86400, 0, 2 * 86400]), 3, half_life_days=1.0)
    assert got == pytest.approx([0.75, 1.0, 0.0])
    with pytest.raises(ValueError):
        PopularityRecommender(half_life_days=1.0).fit(SMALL)  # no timestamps to decay


def test_popularity_explains_the_whole_score_by_popularity_or_recency():
    pop = PopularityRecommender().fit(SMALL)
    assert pop.explain(0, row(0), np.array([2, 0])).features == {"popularity": pytest.approx([2, 3])}
    trend = PopularityRecommender(half_life_days=1.0).fit(
        SMALL, ItemFeatures(last_ts=np.array([0, 2 * 86400, 2 * 86400]))
    )
    assert trend.explain(0, row(0), np.array([0])).features == {"trending": pytest.approx([0.75])}
