"""The online history over HTTP: what a user does changes their next list at once, from any worker, after restarts.

The test model (``tests/service/modeldir.py``): u1 liked a1, a2 (Action); u2 liked c1 (Comedy). Item
factors put the Action items together, the Comedy items together, and the Drama items together.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.service.http.app import create_app
from tests.service.conftest import make_settings


@contextmanager
def serving(model_dir: Path, data_dir: Path, **settings) -> Iterator[TestClient]:
    """One worker of the service over ``data_dir``'s database (two of them share it); the served model
    personalises from one positive, so u2's list comes from it."""
    settings = {"min_history_for_nn": 1, **settings}
    with TestClient(create_app(make_settings(model_dir, data_dir, **settings))) as c:
        yield c


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(model_dir: Path, data_dir: Path) -> Iterator[TestClient]:
    with serving(model_dir, data_dir) as c:
        yield c


def items(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def act(client: TestClient, user: str, item: str, action: str, *, withdraw: bool = False, expect: int = 201) -> dict:
    shown = client.get(f"/recommendations/{user}", params={"k": 3}).json()
    r = client.post(
        "/events/engagement",
        json={
            "recset_id": shown["recset_id"],
            "user_id": user,
            "item_id": item,
            "action_type": action,
            "withdraw": withdraw,
        },
    )
    assert r.status_code == expect, r.text
    return r.json()


def test_a_like_leaves_the_list_at_once_and_the_list_is_rescored_from_the_new_history(client):
    before = client.get("/recommendations/u2", params={"k": 4}).json()
    assert [i["item_id"] for i in before["items"]][:2] == ["c2", "c3"]
    act(client, "u2", "d1", "like")  # a Drama like: Drama items now score for u2
    after = client.get("/recommendations/u2", params={"k": 11}).json()
    ids = [i["item_id"] for i in after["items"]]
    assert "d1" not in ids and "c1" not in ids
    assert after["fallback_used"] is False
    by_id = {i["item_id"]: i for i in after["items"]}
    assert by_id["d2"]["score"] > {i["item_id"]: i for i in before["items"]}.get("d2", {"score": -1e9})["score"]
    assert "Long Night" in by_id["d2"]["reasons"][0]  # because you liked d1


def test_a_dislike_removes_the_item_for_good_and_pushes_its_neighbours_down(client):
    def scores() -> dict[str, float]:
        r = client.get("/recommendations/u2", params={"k": 11})
        return {i["item_id"]: i["score"] for i in r.json()["items"]}

    before = scores()
    act(client, "u2", "c2", "dislike")
    after = scores()
    assert "c2" not in after
    drop = {i: before[i] - after[i] for i in after}
    # c3 points the same way as c2 (cosine 1), c4 half-way (0.71), a4 a little (0.39); Drama not at all
    assert drop["c3"] > drop["c4"] > drop["a4"] > 0
    assert drop["d2"] == pytest.approx(0.0, abs=1e-6)


def test_like_and_dislike_exclude_each_other_and_a_like_can_be_undone(client):
    liked = act(client, "u1", "c1", "like")
    assert "c1" not in items(client.get("/recommendations/u1", params={"k": 11}))
    disliked = act(client, "u1", "c1", "dislike")
    assert disliked["withdrew"] == [liked["id"]]  # the like is taken back by the dislike
    undone = act(client, "u1", "c1", "dislike", withdraw=True)
    assert undone["withdraws"] == disliked["id"] and undone["counts_as_hit"] is False
    assert "c1" in items(client.get("/recommendations/u1", params={"k": 11}))  # nothing active on c1 any more
    nothing = act(client, "u1", "c1", "dislike", withdraw=True, expect=404)
    assert "nothing to withdraw" in nothing["detail"]


def test_a_low_rating_and_a_view_are_seen_but_only_the_view_is_a_positive(client):
    now = int(time.time())
    r = client.post(
        "/events",
        json=[
            {"user_id": "u2", "item_id": "c2", "event": "rating", "rating": 1, "ts": now},
            {"user_id": "u2", "item_id": "c3", "event": "skip", "ts": now},
        ],
    )
    assert r.status_code == 201, r.text
    after = items(client.get("/recommendations/u2", params={"k": 11}))
    assert "c2" not in after and "c3" not in after and "c1" not in after


def test_another_worker_sees_the_action_within_a_second(model_dir, data_dir, db_url):
    """Two workers on one database (SQLite, and PostgreSQL when the machine has it)."""
    shared = {"database_url": db_url, "online_poll_seconds": 0.25}
    with serving(model_dir, data_dir, **shared) as a, serving(model_dir, data_dir, **shared) as b:
        assert "c2" in items(b.get("/recommendations/u2", params={"k": 3}))  # b caches u2's (empty) history
        act(a, "u2", "c2", "like")
        deadline = time.monotonic() + 1.0
        while "c2" in items(b.get("/recommendations/u2", params={"k": 3})):
            assert time.monotonic() < deadline, "worker b still recommends the liked item after 1 s"
            time.sleep(0.05)


def test_the_online_history_survives_a_restart(model_dir, data_dir):
    with serving(model_dir, data_dir) as a:
        act(a, "u2", "c2", "like")
    with serving(model_dir, data_dir) as b:
        assert "c2" not in items(b.get("/recommendations/u2", params={"k": 3}))


def test_the_online_history_can_be_turned_off(model_dir, data_dir):
    with serving(model_dir, data_dir, online_history=False) as c:
        act(c, "u2", "c2", "like")
        assert items(c.get("/recommendations/u2", params={"k": 1})) == ["c2"]


def test_similar_and_popular_leave_out_online_seen_items_when_asked(client):
    act(client, "u2", "d1", "like")
    popular = items(client.get("/popular", params={"k": 3, "user_id": "u2", "exclude_seen": True}))
    assert "d1" not in popular and "c1" not in popular
    similar = client.post("/similar", json={"item_id": "d2", "k": 3, "user_id": "u2", "exclude_seen": True})
    assert "d1" not in items(similar)


def test_items_shown_often_without_engagement_are_demoted_when_the_setting_is_on(model_dir, data_dir):
    with serving(model_dir, data_dir, demote_after_shown=2) as c:
        first = items(c.get("/recommendations/u2", params={"k": 2}))
        items(c.get("/recommendations/u2", params={"k": 2}))
        third = items(c.get("/recommendations/u2", params={"k": 2}))
        assert first == ["c2", "c3"] and not set(third) & set(first)


def test_the_debug_view_shows_the_online_history_as_serving_folds_it(client):
    act(client, "u2", "d1", "like")
    act(client, "u2", "c2", "dislike")
    body = client.get("/debug/online/u2").json()
    assert body["enabled"] is True and body["known_to_model"] is True
    assert body["positives"] == [{"item_id": "d1", "weight": 4.0}]
    assert set(body["seen"]) == {"d1", "c2"} and body["negatives"] == ["c2"]


def test_a_visitor_with_online_likes_and_picked_seeds_gets_both_in_one_list(client):
    now = int(time.time())
    client.post("/events", json=[{"user_id": "visitor", "item_id": "d1", "event": "like", "ts": now}])
    r = client.post("/recommend", json={"user_id": "visitor", "k": 11, "seed_item_ids": ["c1"]})
    body = r.json()
    assert body["strategy"] == "seed_items" and body["fallback_used"] is False
    ids = [i["item_id"] for i in body["items"]]
    assert "d1" not in ids and "c1" not in ids
    assert set(ids[:3]) & {"d2", "d3"} and set(ids[:3]) & {"c2", "c3"}  # Drama from the like, Comedy from the seed
