"""The simulated users: the sample generator's tastes, reproducible decisions, the documented behaviour."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.data import sample
from app.simulate.population import Behaviour, SimPopulation, UserState, attention, uniforms


def test_uniforms_are_a_pure_function_of_their_keys():
    a = uniforms(42, 1, 7, np.arange(100), 1)
    assert a.shape == (100,) and ((a >= 0) & (a < 1)).all()
    assert np.array_equal(a, uniforms(42, 1, 7, np.arange(100), 1))
    for other in (uniforms(43, 1, 7, np.arange(100), 1), uniforms(42, 2, 7, np.arange(100), 1)):
        assert not np.allclose(a, other)
    assert 0.4 < uniforms(1, 2, np.arange(20_000)).mean() < 0.6


def test_the_population_is_the_sample_generators():
    pop = SimPopulation(50, 40, seed=3, new_users=10)
    truth = sample.population(60, 40, 3)
    assert np.array_equal(pop.truth.favourites, truth.favourites)
    assert pop.affinity.shape == (60, 40) and pop.affinity.min() >= 0 and pop.affinity.max() <= 1
    assert set(pop.truth.favourites.sum(axis=1).tolist()) <= {2, 3}
    assert pop.user_ids[0] == "u0001" and pop.item_ids[-1] == "i0040"
    interactions, catalogue = pop.base_log()
    users = {orjson.loads(line)["user_id"] for line in interactions.splitlines()}
    assert users <= set(pop.user_ids[:50]) and not users & set(pop.user_ids[50:])
    assert catalogue == sample.generate(60, 40, 3)[1]
    assert SimPopulation(50, 40, seed=3).base_log() == sample.generate(50, 40, 3)  # no new users: the sample itself


def test_users_act_by_their_taste_and_remember():
    pop = SimPopulation(200, 60, seed=5)
    liked = [int(np.argmax(pop.affinity[u])) for u in range(200)]
    disliked = [int(np.argmin(pop.affinity[u])) for u in range(200)]
    clicks_liked = sum(
        any(a.action_type == "click" for a in pop.act(r, u, [liked[u]], UserState()))
        for u in range(200)
        for r in range(5)
    )
    clicks_disliked = sum(
        any(a.action_type == "click" for a in pop.act(r, u, [disliked[u]], UserState()))
        for u in range(200)
        for r in range(5)
    )
    assert clicks_liked > 3 * max(clicks_disliked, 1)
    # the same draw in another arm: the same actions
    assert pop.act(3, 9, list(range(10)), UserState()) == pop.act(3, 9, list(range(10)), UserState())


def test_behaviour_rules():
    always = SimPopulation(
        10, 30, seed=1, behaviour=Behaviour(click_base=1.0, click_taste=0.0, like_base=1.0, like_taste=0.0)
    )
    state = UserState()
    actions = always.act(1, 0, [4, -1], state)
    assert [(a.item, a.rank, a.action_type) for a in actions] == [(4, 1, "click"), (4, 1, "like")]  # -1: unknown item
    assert state.clicked == {4}
    never_again = SimPopulation(10, 30, seed=1, behaviour=Behaviour(click_base=1.0, click_taste=0.0, repeat=0.0))
    state = UserState(clicked={4})
    assert not [a for a in never_again.act(2, 0, [4], state) if a.action_type == "click"]
    state = UserState(disliked={5})
    assert never_again.act(2, 0, [5], state) == []  # a disliked item is never clicked nor disliked again
    assert attention(np.array([1]))[0] == 1.0 and attention(np.array([10]))[0] < 0.3
    with pytest.raises(ValueError, match="probability"):
        Behaviour(dislike=1.5)
    with pytest.raises(ValueError, match="at most 1"):
        Behaviour(click_base=0.7, click_taste=0.7)


def test_the_exposed_tastes_are_the_ones_behind_the_log():
    """The sample's events favour exactly the favourite genres ``population`` returns (same seed)."""
    pop = SimPopulation(300, 120, seed=11)
    interactions, _ = pop.base_log()
    touched = {(o["user_id"], o["item_id"]) for o in map(orjson.loads, interactions.splitlines())}
    aff = [pop.affinity[int(u[1:]) - 1, pop.item_index[i]] for u, i in touched]
    assert np.mean(aff) > pop.affinity.mean() + 0.2
    other = SimPopulation(300, 120, seed=12)  # another seed's tastes do not explain this log
    assert (
        abs(np.mean([other.affinity[int(u[1:]) - 1, pop.item_index[i]] for u, i in touched]) - other.affinity.mean())
        < 0.1
    )
