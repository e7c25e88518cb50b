"""Recommendation endpoints against the hand-made model (expected lists worked out in modeldir.py's terms)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.model.ease import EASERecommender
from app.model.engines import ENGINES
from app.service.core import precompute
from app.service.http.app import create_app
from tests.service.conftest import make_settings
from tests.service.modeldir import HISTORY, ITEM_IDS, TITLES, USER_IDS, write_model_dir


def ids(resp) -> list[str]:
    return ids_of(resp.json())


def ids_of(body: dict) -> list[str]:
    return [it["item_id"] for it in body["items"]]


def test_personal_list_is_ranked_by_the_dot_product_and_excludes_seen(client):
    # u1 = mean(a1, a2) = [.95, .05, 0]: a3 .762, a4 .683, c1 .054, c2 .050, c3 .046
    r = client.get("/recommendations/u1", params={"limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert ids(r) == ["a3", "a4", "c1", "c2", "c3"]
    assert [it["rank"] for it in body["items"]] == [1, 2, 3, 4, 5]
    assert body["items"][0]["score"] == pytest.approx(0.762, abs=1e-5)
    assert body["items"][1]["score"] == pytest.approx(0.683, abs=1e-5)
    assert body["engine"] == "nn" and body["requested_engine"] == "auto"
    assert body["fallback_used"] is False and body["strategy"] == "personalised"
    assert body["model_version"] == "test-v1" and body["user_id"] == "u1"
    assert body["total_candidates"] == 10  # 12 items - 2 seen
    uuid.UUID(body["recset_id"])
    first = body["items"][0]
    assert first["title"] == "Car Chase" and first["genres"] == ["Action"] and first["year"] == 1995


def test_reasons_name_the_history_item_that_contributes_most(client):
    r = client.get("/recommendations/u1", params={"limit": 3})
    reasons = {it["item_id"]: it["reasons"] for it in r.json()["items"]}
    # a3: a1.a3 = .8 > a2.a3 = .72; c1: only a2 has a Comedy component
    assert reasons["a3"] == [f"similar to {TITLES['a1']} you liked"]
    assert reasons["c1"] == [f"similar to {TITLES['a2']} you liked"]
    r = client.get("/recommendations/u4", params={"limit": 9})
    reasons = {it["item_id"]: it["reasons"] for it in r.json()["items"]}
    assert reasons["d2"] == [f"similar to {TITLES['d1']} you liked"]
    assert reasons["c2"] == [f"similar to {TITLES['c1']} you liked"]
    assert reasons["a4"] == [f"similar to {TITLES['a1']} you liked"]


def test_query_form_and_post_form_agree_with_the_path_form(client):
    path = ids(client.get("/recommendations/u4", params={"limit": 4}))
    query = ids(client.get("/recommendations", params={"user_id": "u4", "k": 4}))
    post = ids(client.post("/recommend", json={"user_id": "u4", "k": 4}))
    # u4 = [1/3, 1/3, 1/3]: c4 .3403, a4 .3363, a3 .3353, a2 .3343
    assert path == query == post == ["c4", "a4", "a3", "a2"]


#: Engines the test model serves (it was written without the hybrid engine: test_hybrid_serving.py has one).
SERVED = sorted(set(ENGINES) - {"hybrid"})


def test_seen_items_are_excluded_for_every_user_and_engine(client):
    for engine in ["auto", *SERVED]:
        for user in USER_IDS:
            r = client.get("/recommendations", params={"user_id": user, "k": 12, "engine": engine})
            assert r.status_code == 200, (engine, user, r.text)
            got = set(ids(r))
            assert not got & set(HISTORY[user]), (engine, user)
            assert len(got) == 12 - len(HISTORY[user])


def test_exclude_seen_false_returns_history_items(client):
    r = client.post("/recommend", json={"user_id": "u1", "k": 3, "exclude_seen": False})
    assert ids(r) == ["a1", "a2", "a3"]


def test_the_hybrid_engine_of_a_model_without_one_is_a_clear_error(client):
    r = client.post("/recommend", json={"user_id": "u7", "k": 3, "engine": "hybrid"})
    assert r.status_code == 422, r.text
    assert "not part of this model" in r.text and "--pipeline" in r.text


@pytest.mark.parametrize("engine", SERVED)
def test_each_engine_can_be_asked_for(client, engine):
    r = client.post("/recommend", json={"user_id": "u7", "k": 3, "engine": engine})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["engine"] == engine and body["requested_engine"] == engine
    assert body["fallback_used"] is False
    assert len(body["items"]) == 3 and all(it["reasons"] for it in body["items"])


def test_auto_uses_the_baseline_for_a_short_history(client):
    # min_history_for_nn=2 in the test settings; u2 has one positive (c1)
    r = client.get("/recommendations/u2", params={"limit": 3})
    body = r.json()
    assert body["engine"] == "baseline" and body["fallback_used"] is True
    # 0.55 log-pop + 0.25 rating + 0.20 genre: d1 .750, a1 .713, c2 .572
    assert ids(r) == ["d1", "a1", "c2"]
    reasons = {it["item_id"]: it["reasons"] for it in body["items"]}
    assert reasons["d1"] == ["popular in Drama", "highly rated (4.2/5)"]
    assert set(reasons["c2"]) == {"popular in Comedy", "matches your genres"}
    assert any("fewer than 2" in n for n in body["notes"])
    # Asking for nn explicitly still gets the model: c2 .905, c3 .806, c4 .507
    r = client.get("/recommendations/u2", params={"limit": 3, "engine": "nn"})
    assert r.json()["engine"] == "nn" and ids(r) == ["c2", "c3", "c4"]


def test_unknown_user_gets_popular_items(client):
    r = client.get("/recommendations/nobody", params={"limit": 3})
    body = r.json()
    assert ids(r) == ["d1", "a1", "c1"]
    assert body["engine"] == "popular" and body["fallback_used"] is True and body["strategy"] == "popular"
    assert all(it["reasons"] == ["popular overall"] for it in body["items"])
    assert any("unknown to the model" in n for n in body["notes"])


def test_popular_engine_for_a_known_user_excludes_seen_and_is_not_a_fallback(client):
    r = client.post("/recommend", json={"user_id": "u1", "k": 2, "engine": "popular"})
    assert ids(r) == ["d1", "c1"] and r.json()["fallback_used"] is False


def test_seed_genres_narrow_the_popular_list_then_fill(client):
    r = client.post("/recommend", json={"user_id": "newbie", "k": 2, "seed_genres": ["comedy"]})
    body = r.json()
    assert ids(r) == ["c1", "c2"] and body["strategy"] == "seed_genres" and body["fallback_used"] is True
    assert body["items"][0]["reasons"] == ["popular in Comedy"]
    r = client.post("/recommend", json={"user_id": "newbie", "k": 6, "seed_genres": ["Comedy"]})
    got = ids(r)
    assert set(got[:5]) == {"c1", "c2", "c3", "c4", "a4"} and got[5] == "d1"
    assert r.json()["items"][5]["reasons"] == ["popular overall"]
    assert any("only 5 item(s) match the seed genres" in n for n in r.json()["notes"])


def test_seed_items_give_similar_items_and_report_unknown_seeds(client):
    r = client.post("/recommend", json={"user_id": "newbie", "k": 3, "seed_item_ids": ["a1", "zzz"]})
    body = r.json()
    assert r.status_code == 200
    # the model pools the seeds' history embeddings like a user's history: [1, 0, 0] -> a2 .901, a3 .802, a4 .703
    assert ids(r) == ["a2", "a3", "a4"]
    assert body["unknown_seed_item_ids"] == ["zzz"] and body["strategy"] == "seed_items"
    assert body["engine"] == "nn" and body["fallback_used"] is False
    assert body["items"][0]["reasons"] == [f"similar to {TITLES['a1']}"]
    assert body["items"][0]["score"] == pytest.approx(0.901, abs=1e-5)
    # two seeds: [.5, .5, 0] -> a4 .503, a2 .501; reasons name the seed that contributes most
    r = client.post("/recommend", json={"k": 2, "seed_item_ids": ["a1", "c1"]})
    assert ids(r) == ["a4", "a2"] and r.json()["user_id"] is None
    assert r.json()["items"][0]["reasons"] == [f"similar to {TITLES['a1']}"]


def test_only_unknown_seeds_fall_back_to_popular(client):
    r = client.post("/recommend", json={"user_id": "newbie", "k": 2, "seed_item_ids": ["x1", "x2"]})
    body = r.json()
    assert r.status_code == 200 and ids(r) == ["d1", "a1"]
    assert body["unknown_seed_item_ids"] == ["x1", "x2"] and body["fallback_used"] is True


def test_seeds_with_the_baseline_engine_use_the_seeds_as_history(client):
    r = client.post("/recommend", json={"user_id": "newbie", "k": 3, "engine": "baseline", "seed_item_ids": ["c1"]})
    body = r.json()
    assert body["engine"] == "baseline" and body["strategy"] == "seed_items"
    assert ids(r) == ["d1", "a1", "c2"]  # same as u2, whose history is exactly c1


def test_filters_apply_before_the_cut(client):
    r = client.post("/recommend", json={"user_id": "u1", "k": 2, "genres": ["Drama"]})
    assert ids(r) == ["c4", "d4"]  # c4 is Comedy|Drama; d4 has the largest bias among the dramas
    assert r.json()["total_candidates"] == 5
    r = client.post("/recommend", json={"user_id": "u1", "k": 3, "exclude_items": ["a3", "c1"]})
    assert ids(r) == ["a4", "c2", "c3"]


def test_fewer_matches_than_k_returns_what_there_is(client):
    # 1996-1999: c3, d2, d3, d4; u3 has seen d2 and d3
    r = client.post("/recommend", json={"user_id": "u3", "k": 5, "year_min": 1996, "year_max": 1999})
    body = r.json()
    assert ids(r) == ["d4", "c3"]
    assert body["total_candidates"] == 2
    assert any("only 2 item(s) are left after filters" in n for n in body["notes"])


def test_unknown_genre_is_a_422_on_that_field(client):
    r = client.post("/recommend", json={"user_id": "u1", "genres": ["Western"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "genres" and "Western" in r.json()["detail"][0]["reason"]
    r = client.post("/recommend", json={"user_id": "x", "seed_genres": ["Western"]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "seed_genres"


def test_similar_items(client):
    r = client.post("/similar", json={"item_id": "a1", "k": 3})
    body = r.json()
    assert r.status_code == 200 and ids(r) == ["a2", "a3", "a4"]
    assert body["item_id"] == "a1" and body["strategy"] == "similar_item"
    assert body["items"][0]["reasons"] == [f"similar to {TITLES['a1']}"]
    assert body["items"][2]["score"] == pytest.approx(0.7 / 0.58**0.5, abs=1e-5)
    r = client.post("/similar", json={"item_id": "a1", "k": 1, "genres": ["Comedy"]})
    assert ids(r) == ["a4"]
    r = client.post("/similar", json={"item_id": "a1", "k": 2, "year_min": 1993})
    assert ids(r)[0] == "a3"
    # with a user: their history is dropped (u1 has seen a2)
    r = client.post("/similar", json={"item_id": "a1", "k": 2, "user_id": "u1"})
    assert ids(r) == ["a3", "a4"]


def test_similar_unknown_item_is_404_with_an_explanation(client):
    r = client.post("/similar", json={"item_id": "nope", "k": 3})
    assert r.status_code == 404
    assert "unknown to the model" in r.json()["detail"] and r.json()["item_id"] == "nope"


def test_popular_endpoint(client):
    r = client.get("/popular", params={"k": 3})
    assert ids(r) == ["d1", "a1", "c1"] and r.json()["engine"] == "popular"
    r = client.get("/popular", params={"k": 2, "genre": "Comedy"})
    assert ids(r) == ["c1", "c2"]
    assert r.json()["items"][0]["reasons"] == ["popular in Comedy"]
    r = client.get("/popular", params={"k": 5, "year_min": 1990, "year_max": 1992})
    assert ids(r) == ["a1", "c1", "a2"] and r.json()["total_candidates"] == 3
    # several genres: any of them
    r = client.get("/popular", params=[("k", "3"), ("genre", "Action"), ("genre", "Drama")])
    assert ids(r)[:2] == ["d1", "a1"] and ids(r)[2][0] in "ad" and r.json()["total_candidates"] == 9  # a1-a4, c4, d1-d4


def test_trending_weights_recent_interactions(client):
    # a1's last interaction is 310 days before the newest: 4 * 2**(-310/30) ~ 0.003
    r = client.get("/popular", params={"k": 3, "trending": True})
    body = r.json()
    assert ids(r) == ["d1", "c1", "d3"] and body["strategy"] == "trending"
    assert body["items"][0]["reasons"] == ["trending"]


def test_popular_lists_are_cached_per_query_but_not_per_user_history(client):
    query = {"k": 5, "year_min": 1990, "year_max": 1992}  # 3 items match: a short list with a note
    first, again = client.get("/popular", params=query).json(), client.get("/popular", params=query).json()
    assert ids_of(first) == ids_of(again) == ["a1", "c1", "a2"]
    assert first["recset_id"] != again["recset_id"]
    assert again["notes"] == first["notes"] and len(first["notes"]) == 1  # a cached list's note is not repeated
    # u1 has seen a1 and a2: with exclude_seen the list is their own, not the cached one
    mine = client.get("/popular", params={**query, "user_id": "u1", "exclude_seen": True}).json()
    assert ids_of(mine) == ["c1"] and mine["total_candidates"] == 1
    assert ids_of(client.get("/popular", params=query).json()) == ["a1", "c1", "a2"]


def test_every_recommendation_response_logs_one_impression(client):
    store = client.app.state.store
    made = {
        "/recommendations": client.get("/recommendations/u1", params={"limit": 2, "platform": "web"}),
        "/recommend": client.post("/recommend", json={"user_id": "u1", "k": 2, "engine": "baseline"}),
        "/similar": client.post("/similar", json={"item_id": "a1", "k": 2}),
        "/popular": client.get("/popular", params={"k": 2}),
    }
    assert store.flush(5)
    for endpoint, r in made.items():
        row = store.get_impression(r.json()["recset_id"])
        assert row is not None, endpoint
        assert row["endpoint"] == endpoint and row["engine"] == r.json()["engine"]
        assert row["item_ids"] == ids(r) and row["model_version"] == "test-v1"
        assert row["latency_ms"] is not None and row["latency_ms"] >= 0
    assert store.get_impression(made["/recommendations"].json()["recset_id"])["platform"] == "web"


def test_a_user_unknown_to_the_model_gets_a_personal_list_from_what_they_did_online(client):
    store = client.app.state.store
    now = int(time.time())
    store.record_events([("online-user", i, "like", now, None, None, "web") for i in ("a1", "a2")])
    r = client.get("/recommendations/online-user", params={"limit": 2})
    body = r.json()
    assert body["fallback_used"] is False and body["strategy"] == "online_history" and body["engine"] == "nn"
    assert ids(r) == ["a3", "a4"]  # the Action items nearest to what they liked, a1 and a2 left out
    assert all("you liked" in item["reasons"][0] for item in body["items"])
    assert any(title in body["items"][0]["reasons"][0] for title in ("Alpha Strike", "Blast Zone"))


def test_users_seen_only_on_items_the_model_lacks_are_told_we_cannot_personalise_yet(client):
    store = client.app.state.store
    store.record_events([("fresh-user", "brand-new", "view", int(time.time()), None, None, "web")])
    client.app.state.online.invalidate(["fresh-user"])
    r = client.get("/recommendations/fresh-user", params={"limit": 2})
    body = r.json()
    assert body["fallback_used"] is True and ids(r) == ["d1", "a1"]
    assert any("since the model was trained" in n for n in body["notes"])


def test_itemknn_reasons_come_from_its_item_similarities(client):
    # u1 liked a1, a2. Co-occurrence cosine: d1 with a1 = 3 / sqrt(4 * 5) = .671 is the largest; a2 co-occurs with a1 only
    r = client.post("/recommend", json={"user_id": "u1", "k": 1, "engine": "itemknn"})
    item = r.json()["items"][0]
    assert item["item_id"] == "d1" and item["score"] == pytest.approx(3 / 20**0.5, abs=1e-5)
    assert item["reasons"] == [f"similar to {TITLES['a1']} you liked"]


def test_models_without_history_embeddings_use_cosine_for_seeds(tmp_path):
    model = write_model_dir(tmp_path / "mf", version="mf", history_embeddings=False)
    with TestClient(create_app(make_settings(model, tmp_path))) as c:
        # known users: own vector = mean of their items, the same ranking as the pooled model
        assert ids(c.get("/recommendations/u1", params={"limit": 2})) == ["a3", "a4"]
        r = c.get("/recommendations/u1", params={"limit": 1})
        assert r.json()["items"][0]["reasons"] == [
            f"similar to {TITLES['a1']} you liked"
        ]  # cosine(a3, a1) .970 > cosine(a3, a2) .964
        # seeds: cosine to the mean unit vector of the seeds: a2 .994, a3 .970, a4 .919
        r = c.post("/recommend", json={"k": 3, "seed_item_ids": ["a1"]})
        assert ids(r) == ["a2", "a3", "a4"] and r.json()["strategy"] == "seed_items"
        assert r.json()["items"][0]["score"] == pytest.approx(0.9 / 0.82**0.5, abs=1e-5)


def test_an_engine_that_cannot_serve_this_model_is_a_422_on_engine(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(EASERecommender, "max_items", 5)
    with TestClient(create_app(make_settings(model_dir, tmp_path))) as c:
        r = c.post("/recommend", json={"user_id": "u1", "engine": "ease"})
        assert r.status_code == 422
        err = r.json()["detail"][0]
        assert err["field"] == "engine" and "at most 5 items" in err["reason"]
        assert c.post("/recommend", json={"user_id": "u1", "engine": "nn"}).status_code == 200


def test_a_short_engine_list_is_filled_from_popular_items(client, monkeypatch):
    # An engine that can only rank c3 (everything else -inf): the rest of the list comes from the popular list.
    rt = client.app.state.runtime
    baseline = rt.engines.get("baseline")

    def only_c3(users, history):
        scores = np.full((len(users), rt.n_items), -np.inf, dtype=np.float32)
        scores[:, rt.item_index("c3")] = 1.0
        return scores

    monkeypatch.setattr(baseline, "score", only_c3)
    r = client.post("/recommend", json={"user_id": "u1", "k": 3, "engine": "baseline"})
    body = r.json()
    assert ids(r) == ["c3", "d1", "c1"]  # then the most popular items u1 has not seen
    assert body["fallback_used"] is True and body["engine"] == "baseline"
    assert body["items"][1]["reasons"] == ["popular overall"]
    assert any("filled from the popular list" in n for n in body["notes"])


def test_exclude_items_do_not_leak_into_the_cached_filter_mask(client):
    body = {"user_id": "u1", "k": 3, "genres": ["Comedy"]}
    first = ids(client.post("/recommend", json=body))
    assert ids(client.post("/recommend", json={**body, "exclude_items": [first[0]]}))[0] != first[0]
    assert ids(client.post("/recommend", json=body)) == first


@pytest.mark.parametrize("history_embeddings", [True, False])
@pytest.mark.parametrize("list_length", [precompute.LENGTH, 2])
def test_precomputed_tables_answer_like_the_per_request_path(tmp_path, monkeypatch, history_embeddings, list_length):
    """precompute_mb=0 scores, explains and finds similar items per request; the default reads precomputed
    rows and best-first lists. With 2-item lists, most filtered requests cannot be answered from the
    list and must fall back to scoring the catalogue, with the same answer."""
    monkeypatch.setattr(precompute, "LENGTH", list_length)
    model = write_model_dir(tmp_path / "model", history_embeddings=history_embeddings)
    answers = []
    for mb in (0, 64):
        app = create_app(make_settings(model, tmp_path / f"data-{mb}", precompute_mb=mb))
        with TestClient(app) as c:
            rt = app.state.runtime
            t = rt.tables
            assert (t.user_scores is None) == (t.item_cosines is None) == (t.user_best is None) == (mb == 0)
            answers.append(
                [c.get(f"/recommendations/{u}", params={"limit": 6}).json() for u in USER_IDS]
                + [
                    c.post("/recommend", json={"user_id": u, "k": 3, "genres": [g]}).json()
                    for u in USER_IDS
                    for g in ("Comedy", "Drama")
                ]
                + [c.post("/recommend", json={"user_id": u, "k": 3, "year_min": 1995}).json() for u in USER_IDS]
                + [c.post("/similar", json={"item_id": i, "k": 4}).json() for i in ITEM_IDS]
                + [c.post("/similar", json={"item_id": i, "k": 3, "genres": ["Drama"]}).json() for i in ITEM_IDS]
                + [
                    c.get("/popular", params={"k": 4, "genre": g, "trending": t}).json()
                    for g in ("Comedy", "Drama")
                    for t in ("false", "true")
                ]
                + [c.get("/popular", params={"k": 5, "user_id": u, "exclude_seen": "true"}).json() for u in USER_IDS]
            )
    for without, with_tables in zip(*answers, strict=True):
        assert without["total_candidates"] == with_tables["total_candidates"]
        a, b = without["items"], with_tables["items"]
        assert [it["item_id"] for it in a] == [it["item_id"] for it in b]
        assert [it["reasons"] for it in a] == [it["reasons"] for it in b]
        assert [it["score"] for it in a] == pytest.approx([it["score"] for it in b], abs=1e-6)


def test_every_recommendation_route_takes_k_or_limit(client):
    for size in ("k", "limit"):
        assert len(ids(client.get("/recommendations/u1", params={size: 2}))) == 2
        assert len(ids(client.get("/recommendations", params={"user_id": "u1", size: 2}))) == 2
        assert len(ids(client.post("/recommend", json={"user_id": "u1", size: 2}))) == 2
        assert len(ids(client.post("/similar", json={"item_id": "a1", size: 2}))) == 2
        assert len(ids(client.get("/popular", params={size: 2}))) == 2
    assert client.get("/popular", params={"k": 2, "limit": 2}).json()["k"] == 2  # the same value twice is fine
    r = client.get("/popular", params={"k": 2, "limit": 3})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "limit" and "give one" in r.text
    r = client.post("/recommend", json={"user_id": "u1", "limit": 51})  # max_k is 50 in the test settings
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "limit"


def test_the_list_size_without_k_or_limit_is_a_setting(model_dir, tmp_path):
    with TestClient(create_app(make_settings(model_dir, tmp_path, default_k=3))) as c:
        body = c.get("/recommendations/u1").json()
        assert body["k"] == 3 and len(body["items"]) == 3
        assert len(ids(c.post("/similar", json={"item_id": "a1"}))) == 3


# ----- diversity ------------------------------------------------------------------------------------------------
SHIPPED_MODEL = Path(__file__).resolve().parents[4] / "models" / "latest"


@pytest.fixture(scope="module")
def shipped_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The model shipped in the repository (1,000 users, 600 items, 32-d embeddings)."""
    app = create_app(make_settings(SHIPPED_MODEL, tmp_path_factory.mktemp("shipped-data")))
    with TestClient(app) as c:
        yield c


def test_diversity_zero_is_the_list_without_it(client):
    for user in ("u1", "u4", "nobody"):
        plain = client.get(f"/recommendations/{user}", params={"limit": 5}).json()
        zero = client.get(f"/recommendations/{user}", params={"limit": 5, "diversity": 0}).json()
        assert ids_of(zero) == ids_of(plain) and zero["items"] == plain["items"] and zero["notes"] == plain["notes"]
        query = client.get("/recommendations", params={"user_id": user, "k": 5, "diversity": "0.0"})
        post = client.post("/recommend", json={"user_id": user, "k": 5, "diversity": 0})
        assert ids(query) == ids(post) == ids_of(plain)
    plain = client.post("/similar", json={"item_id": "a1", "k": 4})
    assert ids(client.post("/similar", json={"item_id": "a1", "k": 4, "diversity": 0.0})) == ids(plain)


def test_diversity_reranks_every_spelling_and_says_so(client):
    note = "diversity 1: picked from the best 10 candidates, items much like those above them moved down"
    for r in (
        client.get("/recommendations/u1", params={"limit": 3, "diversity": 1}),
        client.get("/recommendations", params={"user_id": "u1", "k": 3, "diversity": 1}),
        client.post("/recommend", json={"user_id": "u1", "k": 3, "diversity": 1}),
    ):
        assert r.status_code == 200 and ids(r) == ["a3", "c1", "d4"] and r.json()["notes"] == [note]  # plain: a3 a4 c1
    r = client.post("/similar", json={"item_id": "a1", "k": 3, "diversity": 1})
    assert ids(r) == ["a2", "d1", "c1"] and "diversity 1" in r.json()["notes"][0]  # plain: a2 a3 a4


def test_diversity_outside_0_to_1_is_a_422_on_diversity(client):
    cases = [
        ("get", "/recommendations/u1", {"diversity": 1.5}, "Input should be less than or equal to 1"),
        (
            "get",
            "/recommendations",
            {"user_id": "u1", "diversity": "-0.1"},
            "Input should be greater than or equal to 0",
        ),
        ("get", "/recommendations/u1", {"diversity": "nan"}, "Input should be a finite number"),
        ("get", "/recommendations/u1", {"diversity": "lots"}, "Input should be a valid number"),
        ("post", "/recommend", {"user_id": "u1", "diversity": 2}, "Input should be less than or equal to 1"),
        ("post", "/similar", {"item_id": "a1", "diversity": -1}, "Input should be greater than or equal to 0"),
    ]
    for method, path, args, reason in cases:
        r = client.get(path, params=args) if method == "get" else client.post(path, json=args)
        assert r.status_code == 422, (path, args, r.text)
        error = r.json()["detail"][0]
        assert error["field"] == "diversity" and error["reason"].startswith(reason), (path, args, error)
        assert r.json()["message"].startswith(f"diversity: {reason}")


def _mean_cosine(c: TestClient, body: dict) -> float:
    """Mean cosine over pairs of the list's items in the served model's item embeddings."""
    rt = c.app.state.runtime
    unit = rt.served.item_unit[rt.items.indices(ids_of(body))]
    n = unit.shape[0]
    return float(((unit @ unit.T).sum() - np.trace(unit @ unit.T)) / (n * (n - 1)))


def test_full_diversity_makes_the_shipped_models_lists_less_alike(shipped_client):
    for user in ("u0001", "u0250", "u0500", "u0999"):
        plain = shipped_client.get(f"/recommendations/{user}", params={"limit": 10}).json()
        zero = shipped_client.get(f"/recommendations/{user}", params={"limit": 10, "diversity": 0}).json()
        full = shipped_client.get(f"/recommendations/{user}", params={"limit": 10, "diversity": 1}).json()
        assert ids_of(zero) == ids_of(plain) and len(ids_of(full)) == 10
        assert _mean_cosine(shipped_client, full) < _mean_cosine(shipped_client, plain), user
        assert ids_of(full)[0] == ids_of(plain)[0]  # the best item stays first
        assert "diversity 1: picked from the best 50 candidates" in full["notes"][0]
    plain = shipped_client.post("/similar", json={"item_id": "i0001", "k": 10}).json()
    full = shipped_client.post("/similar", json={"item_id": "i0001", "k": 10, "diversity": 1}).json()
    assert _mean_cosine(shipped_client, full) < _mean_cosine(shipped_client, plain)
