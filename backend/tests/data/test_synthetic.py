"""The synthetic log generator: deterministic, ML-20M-shaped (or shop-shaped), tastes planted, readable."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from app.data import synthetic
from app.data.catalog import read_items
from app.data.events import read_events

POSITIVE = ("like", "playlist_add")


def generate(tmp_path, events, shape="movielens", seed=0):
    out = tmp_path / f"{shape}-{events}-{seed}"
    world = synthetic.write(out, events, shape, seed)
    return world, out


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    world, out = generate(tmp_path_factory.mktemp("ml"), 60_000)
    log, summary = read_events(out / "interactions.jsonl", strict=True)
    return world, out, log, summary


def indices(log):
    users = np.array([int(u[1:]) - 1 for u in log.user_id])
    items = np.array([int(i[1:]) - 1 for i in log.item_id])
    return users, items


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    _, a = generate(tmp_path / "a", 5_000, seed=3)
    _, b = generate(tmp_path / "b", 5_000, seed=3)
    _, c = generate(tmp_path / "c", 5_000, seed=4)
    for name in ("interactions.jsonl", "items.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "interactions.jsonl").read_bytes() != (c / "interactions.jsonl").read_bytes()


def test_every_line_is_accepted_and_counts_are_exact(movielens):
    world, out, log, summary = movielens
    assert summary.lines == summary.accepted == 60_000 and summary.rejected == 0
    assert (out / "interactions.jsonl").read_bytes().count(b"\n") == 60_000
    items = read_items(out / "items.jsonl")
    assert len(items) == world.n_items and len({i["title"] for i in items.values()}) == world.n_items
    assert set(log.item_id.tolist()) <= set(items)
    assert all(1 <= len(i["genres"]) <= 3 for i in items.values())


def test_movielens_sizes_follow_ml20m():
    world = synthetic.plan(20_000_000)
    assert world.n_users == 138_000 and abs(world.n_items - 27_000) < 500
    assert world.counts.sum() == 20_000_000 and world.counts.min() >= 20


def test_activity_is_heavy_tailed_with_at_least_20_events(movielens):
    _, _, log, _ = movielens
    users, _ = indices(log)
    per_user = np.bincount(users)
    assert per_user.min() >= 20
    assert np.median(per_user) < 0.75 * per_user.mean()  # a long right tail
    assert per_user.max() > 5 * np.median(per_user)


def test_popularity_is_heavy_tailed(movielens):
    _, _, log, _ = movielens
    _, items = indices(log)
    counts = np.sort(np.bincount(items))[::-1]
    assert counts[: counts.size // 10].sum() > 0.5 * counts.sum()  # the top 10% of items: most events


def test_events_platforms_ratings_and_time(movielens):
    _, _, log, _ = movielens
    assert set(Counter(log.event.tolist())) == {
        "view",
        "play",
        "click",
        "rating",
        "like",
        "playlist_add",
        "skip",
        "dislike",
    }
    assert set(log.platform.tolist()) == {"web", "mobile"}
    assert set(log.rating[log.event == "rating"].tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.isnan(log.rating[log.event != "rating"]).all()
    assert log.ts.max() - log.ts.min() > 5 * 365 * 86_400  # years
    users, _ = indices(log)
    same_user = users[1:] == users[:-1]
    assert (np.diff(users) >= 0).all()  # the file is ordered by user ...
    assert (np.diff(log.ts)[same_user] >= 0).all()  # ... and each user's events by time


def test_positives_follow_the_planted_tastes(movielens):
    world, _, log, _ = movielens
    users, items = indices(log)
    taste = np.concatenate([world.tastes(first, last) for first, last in world.blocks()])
    liked = taste[users, world.item_topic[items]]  # how much the user likes the item's topic
    positive = np.isin(log.event, POSITIVE) | ((log.event == "rating") & (log.rating >= 4))
    negative = np.isin(log.event, ("skip", "dislike")) | ((log.event == "rating") & (log.rating <= 2))
    rng = np.random.default_rng(0)
    chance = taste[users, world.item_topic[rng.integers(0, world.n_items, users.size)]].mean()
    assert liked[positive].mean() > 3 * chance
    assert liked[positive].mean() > 2 * liked[negative].mean()


def test_ecommerce_shape(tmp_path):
    world, out = generate(tmp_path, 40_000, "ecommerce")
    log, summary = read_events(out / "interactions.jsonl", strict=True)
    assert summary.accepted == 40_000 and world.n_items >= 1_000
    users, items = indices(log)
    positive = np.isin(log.event, ("view", "click", "like", "share")) | ((log.event == "rating") & (log.rating >= 4))
    pairs = np.unique(users[positive].astype(np.int64) * world.n_items + items[positive])
    per_user = np.bincount(pairs // world.n_items)
    assert 7 <= np.median(per_user) <= 13  # about 10 positives per user
    # little overlap: two users share few items (their item sets are mostly disjoint)
    sets = [set(items[users == u].tolist()) for u in range(200)]
    shared = [
        len(sets[a] & sets[b]) / max(1, min(len(sets[a]), len(sets[b]))) for a in range(100) for b in range(100, 200)
    ]
    assert np.mean(shared) < 0.05
    counts = np.sort(np.bincount(items, minlength=world.n_items))[::-1]
    assert counts[: counts.size // 10].sum() < 0.5 * counts.sum()  # a flat head: no blockbusters


def test_cli(tmp_path, capsys):
    assert synthetic.main(["--events", "2000", "--out", str(tmp_path), "--seed", "5"]) == 0
    assert "wrote 2000 events" in capsys.readouterr().err
    _, out = generate(tmp_path, 2000, seed=5)
    assert (tmp_path / "interactions.jsonl").read_bytes() == (out / "interactions.jsonl").read_bytes()
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(SystemExit):
        synthetic.main(["--events", "5", "--out", str(tmp_path)])


def test_items_sets_the_catalogue_size(tmp_path, capsys):
    """``--items`` replaces the shape's catalogue size; every item id it writes is within it."""
    assert synthetic.main(["--events", "3000", "--shape", "ecommerce", "--items", "1500", "--out", str(tmp_path)]) == 0
    assert "on 1500 items" in capsys.readouterr().err
    log, _ = read_events(tmp_path / "interactions.jsonl", strict=True)
    assert len((tmp_path / "items.jsonl").read_bytes().splitlines()) == 1500
    _, items = indices(log)
    assert items.max() < 1500
    with pytest.raises(SystemExit):
        synthetic.main(["--events", "3000", "--items", "0", "--out", str(tmp_path)])
