"""The hybrid engine as the service serves it: trained by the training CLI's default pipeline on a small
generated log, restored from the model directory, asked for through the API (filters, exclusions,
seeds, reasons, online actions), and chosen by ``auto`` only when training found it better."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from app.data.sample import generate
from app.model.artifacts import load_bundle
from app.registry.train import main as train_main
from app.service.http.app import create_app
from tests.service.conftest import make_settings

REASONS = ("because you liked", "similar to", "popular with people like you", "trending now", "matches your genres")


@pytest.fixture(scope="module")
def hybrid_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    work = tmp_path_factory.mktemp("hybrid-model")
    interactions, items = generate(n_users=150, n_items=80, seed=5)
    (work / "interactions.jsonl").write_bytes(interactions)
    (work / "items.jsonl").write_bytes(items)
    code = train_main(
        [
            "--data-path",
            str(work / "interactions.jsonl"),
            "--items-path",
            str(work / "items.jsonl"),
            "--model-dir",
            str(work / "model"),
            "--epochs",
            "3",
            "--ensemble",
            "1",
            "--embedding-dim",
            "16",
            "--evaluation",
            "none",
            "--version",
            "hybrid-v1",
        ]
    )
    assert code == 0
    return work / "model", interactions


@pytest.fixture(scope="module")
def client(hybrid_model, tmp_path_factory) -> Iterator[TestClient]:
    app = create_app(make_settings(hybrid_model[0], tmp_path_factory.mktemp("hybrid-data")))
    with TestClient(app) as c:
        yield c


def history(interactions: bytes, user: str) -> set[str]:
    return {e["item_id"] for e in map(orjson.loads, interactions.splitlines()) if e["user_id"] == user}


def test_the_default_pipeline_writes_the_hybrid_engine_and_its_validation(hybrid_model):
    model_dir, _ = hybrid_model
    assert {"hybrid.npz", "ranker.txt"} <= {p.name for p in model_dir.iterdir()}
    meta = orjson.loads((model_dir / "metadata.json").read_bytes())
    val = meta["metrics"]["hybrid"]
    assert val["auto"] in ("hybrid", "nn") and val["users"] > 0
    assert set(val["metrics"]) >= {"hybrid", "nn", "itemknn", "als", "ease", "popular", "trending", "genre"}
    better = val["metrics"]["hybrid"]["ndcg@10"] > val["metrics"]["nn"]["ndcg@10"]
    assert val["auto"] == ("hybrid" if better else "nn")
    assert meta["hybrid"]["feature_names"][0] == "nn_score" and meta["hybrid"]["base"] == "nn_score"


def test_ready_says_which_engine_auto_serves(client, hybrid_model):
    info = client.get("/ready").json()
    meta = orjson.loads((hybrid_model[0] / "metadata.json").read_bytes())
    assert info["auto_engine"] == meta["metrics"]["hybrid"]["auto"]
    assert info["engines"]["hybrid"] in ("ready", "fitted on first use")


def test_hybrid_lists_exclude_seen_items_and_give_reasons(client, hybrid_model):
    _, interactions = hybrid_model
    users = sorted({e["user_id"] for e in map(orjson.loads, interactions.splitlines())})[:15]
    texts = []
    for user in users:
        r = client.get(f"/recommendations/{user}", params={"limit": 10, "engine": "hybrid"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["engine"] == "hybrid" and body["fallback_used"] is False and len(body["items"]) == 10
        assert not {it["item_id"] for it in body["items"]} & history(interactions, user)
        for it in body["items"]:
            assert it["reasons"] and len(it["reasons"]) <= 2
            texts += it["reasons"]
    assert any(t.startswith(REASONS) for t in texts), texts[:20]


def test_hybrid_lists_follow_filters_and_seeds(client):
    genre = client.get("/ready").json()["genres"][0]
    r = client.post("/recommend", json={"user_id": "1", "k": 5, "engine": "hybrid", "genres": [genre]})
    assert r.status_code == 200, r.text
    assert r.json()["items"] and all(genre in it["genres"] for it in r.json()["items"])
    seeds = [it["item_id"] for it in client.get("/popular", params={"k": 3}).json()["items"]]
    r = client.post("/recommend", json={"user_id": "visitor-1", "k": 5, "engine": "hybrid", "seed_item_ids": seeds})
    body = r.json()
    assert r.status_code == 200 and body["strategy"] == "seed_items" and body["engine"] == "hybrid"
    assert not set(seeds) & {it["item_id"] for it in body["items"]}


def test_a_like_changes_the_next_hybrid_list_at_once(client):
    first = client.get("/recommendations/2", params={"limit": 10, "engine": "hybrid"}).json()
    liked = first["items"][0]["item_id"]
    resp = client.post(
        "/events/engagement",
        json={"recset_id": first["recset_id"], "user_id": "2", "item_id": liked, "action_type": "like"},
    )
    assert resp.status_code in (200, 201), resp.text
    after = client.get("/recommendations/2", params={"limit": 10, "engine": "hybrid"}).json()
    assert liked not in {it["item_id"] for it in after["items"]}
    assert [it["item_id"] for it in after["items"]] != [it["item_id"] for it in first["items"]]


def test_the_restored_engine_scores_as_the_saved_state_says(hybrid_model):
    bundle = load_bundle(hybrid_model[0])
    engine = bundle.hybrid(bundle.scorer())
    users = np.arange(20)
    scores = engine.score(users, bundle.history[:20])
    again = bundle.hybrid(bundle.scorer()).score(users, bundle.history[:20])
    np.testing.assert_array_equal(scores, again)  # refitted sources are deterministic
    assert np.isfinite(scores).all() and scores.shape == (20, len(bundle.items))


def test_precomputed_hybrid_lists_answer_as_ranking_per_request(hybrid_model, tmp_path):
    """The lists built at load (when auto serves the hybrid engine) give the same items, scores and
    reasons as ranking and explaining per request, filtered or not."""
    from app.service.core import strategies
    from app.service.core.filters import Filters
    from app.service.core.loading import load_runtime
    from app.service.core.precompute import HYBRID_EXPLAINED, hybrid_lists

    rt = load_runtime(hybrid_model[0], make_settings(hybrid_model[0], tmp_path))
    if rt.hybrid_lists is None:  # auto serves nn for this model: build them as the runtime would
        rt.engines._engines["hybrid"] = rt.engines._fit("hybrid")
        rt.hybrid_lists = hybrid_lists(rt.engines.get("hybrid"), rt.history, rt.seen_matrix, rt.catalogue.genres)
    genre = rt.catalogue.genre_names[0]
    asks = [(user, f, k) for user in ("1", "7", "42") for f in (Filters(), Filters(genres=(genre,))) for k in (10, 30)]
    stored = [strategies.recommend(rt, user, k, "hybrid", filters=f) for user, f, k in asks]
    lists, rt.hybrid_lists = rt.hybrid_lists, None
    fresh = [strategies.recommend(rt, user, k, "hybrid", filters=f) for user, f, k in asks]
    for a, b in zip(stored, fresh, strict=True):
        assert a.item_ids == b.item_ids and a.scores == b.scores
        assert [it["reasons"] for it in a.items] == [it["reasons"] for it in b.items]
    assert lists.codes.shape[:2] == (len(rt.users), HYBRID_EXPLAINED)  # reasons kept for the first entries
