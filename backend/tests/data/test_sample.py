"""The shipped sample data: deterministic, regenerable, and shaped like the brief says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from app.data import sample
from app.data.catalog import read_items
from app.data.dataset import load_dataset
from app.data.events import read_events

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def default_sample():
    return sample.generate()


def test_same_seed_same_bytes_other_seed_differs():
    a = sample.generate(120, 60, seed=3)
    assert a == sample.generate(120, 60, seed=3)
    assert a[0] != sample.generate(120, 60, seed=4)[0]


def test_shipped_files_are_the_generator_output(default_sample):
    interactions, items = default_sample
    assert (DATA / "interactions.jsonl").read_bytes() == interactions, "regenerate: python -m app.data.sample"
    assert (DATA / "items.jsonl").read_bytes() == items
    assert len(interactions) + len(items) < 5_000_000


def test_sample_shape(default_sample, tmp_path):
    interactions, items_bytes = default_sample
    (tmp_path / "interactions.jsonl").write_bytes(interactions)
    (tmp_path / "items.jsonl").write_bytes(items_bytes)
    log, summary = read_events(tmp_path / "interactions.jsonl", strict=True)
    assert summary.rejected == 0 and 40_000 <= summary.accepted <= 60_000
    assert len(np.unique(log.user_id.astype(str))) == 1000
    assert set(Counter(log.event.tolist())) == {"view", "click", "play", "like", "playlist_add", "rating", "skip"}
    assert set(log.platform.tolist()) == {"web", "mobile"}
    ratings = log.rating[log.event == "rating"]
    assert set(ratings.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert np.isnan(log.rating[log.event != "rating"]).all()
    assert (log.ts.max() - log.ts.min()) > 150 * 86_400  # several months
    assert (np.diff(log.ts) >= 0).all()  # a log in time order

    items = read_items(tmp_path / "items.jsonl")
    assert len(items) == 600 and len({i["title"] for i in items.values()}) == 600
    assert all(1 <= len(i["genres"]) <= 3 and set(i["genres"]) <= set(sample.GENRES) for i in items.values())
    years = [i["year"] for i in items.values()]
    assert min(years) >= 1970 and max(years) <= 2024

    ds = load_dataset(tmp_path / "interactions.jsonl").dataset
    pop = np.sort(np.bincount(ds.item_idx, minlength=ds.n_items))[::-1]
    assert pop[:60].sum() > 0.4 * pop.sum()  # popularity skew: the top 10% of items hold > 40% of positives
    assert ds.n_items == 600


def test_users_follow_their_genre_tastes(default_sample, tmp_path):
    """Each user's positives concentrate on few genres: their top 3 genres carry most of the mass."""
    interactions, items_bytes = default_sample
    (tmp_path / "i.jsonl").write_bytes(interactions)
    items = {o["item_id"]: o["genres"] for o in map(orjson.loads, items_bytes.splitlines())}
    ds = load_dataset(tmp_path / "i.jsonl").dataset
    genre_index = {g: k for k, g in enumerate(sample.GENRES)}
    member = np.zeros((ds.n_items, len(sample.GENRES)))
    for j, item_id in enumerate(ds.items.ids):
        member[j, [genre_index[g] for g in items[item_id]]] = 1
    user_genres = ds.matrix().astype(bool).astype(float) @ member
    top3 = np.sort(user_genres, axis=1)[:, -3:].sum(axis=1) / user_genres.sum(axis=1)
    catalogue = np.sort(member.sum(axis=0))[-3:].sum() / member.sum()
    assert np.median(top3) > catalogue + 0.15


def test_cli_writes_files(tmp_path, capsys):
    assert sample.main(["--out", str(tmp_path), "--users", "50", "--items", "40", "--seed", "1"]) == 0
    interactions, items = sample.generate(50, 40, 1)
    assert (tmp_path / "interactions.jsonl").read_bytes() == interactions
    assert (tmp_path / "items.jsonl").read_bytes() == items
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically, nothing left beside the files
    assert "wrote" in capsys.readouterr().out
