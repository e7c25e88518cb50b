"""HTTP: engagement and event posts (validation, 404/422, idempotency), metrics endpoints, debug views,
Prometheus; first on a minimal app with the store's routers, then through the service's ``create_app``."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.store import Store
from app.store import schema as t
from tests.store import scenario as sc
from tests.store.scenario import DAY, RECSETS, T0

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # both dialects: test_store/test_metrics


def _imp(store: Store, user: str = "u1") -> str:
    rid = str(uuid.uuid4())
    store.log_impression(rid, user, "/recommendations", "nn", "v1", ["a", "b", "c"], [3, 2, 1], platform="web")
    return rid


def _fields(resp) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in resp.json()["detail"]}


def test_engagement_created(client: TestClient, store: Store) -> None:
    rid = _imp(store)
    r = client.post(
        "/events/engagement",
        json={
            "recset_id": rid.upper(),
            "user_id": "u1",
            "item_id": "b",
            "action_type": "Click",
            "ts": "2026-01-01T00:00:00Z",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["recset_id"] == rid and body["in_list"] and body["rank"] == 2 and body["ts"] == T0
    row = store.page(t.engagements)["rows"][0]
    assert row["platform"] == "web" and row["action_type"] == "click"  # platform defaults to the list's


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"recset_id": "string"}, "recset_id", "placeholder"),
        ({"recset_id": "not-a-uuid"}, "recset_id", "not a UUID"),
        ({"user_id": "string"}, "user_id", "placeholder"),
        ({"item_id": "String "}, "item_id", "placeholder"),
        ({"item_id": ""}, "item_id", "empty"),
        ({"user_id": "x" * 129}, "user_id", "longer than 128"),
        ({"action_type": "string"}, "action_type", "placeholder"),
        ({"action_type": "teleport"}, "action_type", "unknown action_type"),
        ({"platform": "string"}, "platform", "placeholder"),
        ({"ts": 0}, "ts", "ts=0 is a placeholder"),
        ({"ts": 1_767_225_600_000}, "ts", "milliseconds"),
        ({"ts": "yesterday"}, "ts", "not Unix seconds"),
        ({"user_id": None}, "user_id", "string or an integer"),
    ],
)
def test_engagement_validation(client: TestClient, store: Store, payload: dict, field: str, reason: str) -> None:
    body = {"recset_id": _imp(store), "user_id": "u1", "item_id": "a", "action_type": "click", **payload}
    r = client.post("/events/engagement", json=body)
    assert r.status_code == 422, r.text
    assert reason in _fields(r)[field]
    assert store.count(t.engagements) == 0


def test_engagement_unknown_recset_and_wrong_user(client: TestClient, store: Store) -> None:
    r = client.post(
        "/events/engagement",
        json={"recset_id": str(uuid.uuid4()), "user_id": "u1", "item_id": "a", "action_type": "click"},
    )
    assert r.status_code == 404 and "unknown recset_id" in r.json()["detail"]
    rid = _imp(store, user="u1")
    r = client.post(
        "/events/engagement", json={"recset_id": rid, "user_id": "u2", "item_id": "a", "action_type": "click"}
    )
    assert r.status_code == 422 and "shown to user 'u1'" in _fields(r)["user_id"]
    r = client.post("/events/engagement", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_engagement_off_list_is_stored_and_flagged(client: TestClient, store: Store) -> None:
    rid = _imp(store)
    r = client.post(
        "/events/engagement", json={"recset_id": rid, "user_id": "u1", "item_id": "zz", "action_type": "like"}
    )
    assert r.status_code == 201 and r.json()["in_list"] is False and r.json()["counts_as_hit"] is False
    assert client.get("/metrics/pac").json()["total_hits"] == 0


def test_idempotency_header(client: TestClient, store: Store) -> None:
    rid = _imp(store)
    body = {"recset_id": rid, "user_id": "u1", "item_id": "a", "action_type": "click"}
    first = client.post("/events/engagement", json=body, headers={"Idempotency-Key": "abc"})
    again = client.post("/events/engagement", json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == 201 and again.status_code == 200 and again.json()["duplicate"] is True
    ev = [{"user_id": "u1", "item_id": "x", "event": "view", "ts": T0}]
    assert client.post("/events", json=ev, headers={"Idempotency-Key": "e1"}).status_code == 201
    assert client.post("/events", json=ev, headers={"Idempotency-Key": "e1"}).status_code == 200
    assert store.count(t.engagements) == 1 and store.count(t.events) == 1


def test_post_events_forms(client: TestClient, store: Store) -> None:
    one = {"user_id": 7, "item_id": "m1", "event": "watch", "ts": T0, "platform": "tv"}
    r = client.post("/events", json=one)
    assert r.status_code == 201 and r.json()["accepted"] == 1 and r.json()["new_user_ids"] == ["7"]
    r = client.post("/events", json=[one, {**one, "item_id": "m2", "ts": "2026-01-01T00:00:05"}])
    assert r.json()["accepted"] == 2 and r.json()["new_items"] == 1
    r = client.post("/events", json={"events": [{**one, "event": "rating", "rating": 4.5}]})
    assert r.json()["accepted"] == 1
    lines = (
        b'{"user_id": "8", "item_id": "m1", "event": "click", "ts": 1767225600}\n\n'
        b'{"user_id": "8", "item_id": "m3", "event": "like", "ts": 1767225601}\n'
    )
    r = client.post("/events", content=lines, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 201 and r.json()["accepted"] == 2
    assert store.count(t.events) == 6
    rows = store.page(t.events, where=[t.events.c.user_id == "8"], order_by=[t.events.c.ts])["rows"]
    assert [e["item_id"] for e in rows] == ["m1", "m3"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([{"user_id": "u", "item_id": "i", "event": "watch", "ts": 0}], "outside 1990-01-01"),
        ([{"user_id": "u", "item_id": "i", "event": "jump", "ts": T0}], "unknown event type"),
        ([{"user_id": "string", "item_id": "i", "event": "watch", "ts": T0}], "placeholder"),
        ([{"user_id": "u", "item_id": "i", "event": "rating", "ts": T0}], "needs a numeric rating"),
        ([{"user_id": "u", "item_id": "i", "event": "rating", "rating": 9, "ts": T0}], "outside 1-5"),
        ([{"user_id": "u", "event": "watch", "ts": T0}], "missing field"),
        ([42], "JSON object"),
        ([], "no events"),
    ],
)
def test_post_events_validation_is_all_or_nothing(client: TestClient, store: Store, body: list, reason: str) -> None:
    good = {"user_id": "u", "item_id": "i", "event": "watch", "ts": T0}
    r = client.post("/events", json=[good, *body] if body else body)
    assert r.status_code == 422, r.text
    assert reason in r.json()["message"]
    if body:
        assert r.json()["detail"][0]["loc"] == ["body", 1]  # the index of the bad event in the batch
    assert store.count(t.events) == 0


def test_post_events_limits(client: TestClient) -> None:
    r = client.post("/events", json=[{"user_id": "u", "item_id": "i", "event": "view", "ts": T0}] * 10_001)
    assert r.status_code == 413
    assert client.post("/events", content=b"", headers={"content-type": "application/json"}).status_code == 422
    r = client.post("/events", content=b'{"a":1}\n{bad', headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 422 and "line.2" in r.json()["message"]


def test_metrics_endpoints_match_the_store(client: TestClient, store: Store) -> None:
    sc.load(store)
    r = client.get("/metrics/pac", params={"start_ts": "2026-01-01", "end_ts": T0 + DAY, "k": 3, "window_hours": 24})
    assert r.status_code == 200
    pac = r.json()
    assert pac["pac_mean"] == pytest.approx(6 / 24) and pac["pac_micro"] == pytest.approx(3 / 11)
    assert set(pac["by_engine"]) == {"nn", "popular"} and set(pac["by_model_version"]) == {"v1", "v2"}
    r = client.get(
        "/metrics/pac",
        params={
            "start_ts": T0,
            "end_ts": T0 + DAY,
            "k": 3,
            "engine": "nn",
            "platform": "web",
            "action_types": "click,like",
        },
    )
    assert r.json()["pac_mean"] == pytest.approx(1 / 6)  # A: i2 clicked -> 1/3; C: only an add_to_playlist -> 0
    rep = client.get("/metrics/replay", params={"start_ts": T0, "end_ts": T0 + DAY, "k": 3}).json()
    assert rep["precision_at_k"] == pytest.approx(13 / 24) and rep["ctr"] == pytest.approx(3 / 4)
    summ = client.get("/metrics/summary", params={"since": T0, "until": T0 + DAY}).json()
    assert summ["requests"] == 5 and summ["coverage"] == pytest.approx(0.6)
    assert summ["latency_ms"]["p95"] == pytest.approx(48)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/metrics/pac", {"k": 0}, "k"),
        ("/metrics/pac", {"k": 1001}, "k"),
        ("/metrics/pac", {"window_hours": 0}, "window_hours"),
        ("/metrics/pac", {"start_ts": "last tuesday"}, "start_ts"),
        ("/metrics/pac", {"start_ts": T0 + 10, "end_ts": T0}, "end_ts"),
        ("/metrics/pac", {"action_types": "click,teleport"}, "action_types"),
        ("/metrics/replay", {"end_ts": "-5"}, "end_ts"),
        ("/metrics/summary", {"since": T0 + 10, "until": T0}, "since"),
        ("/debug/users", {"limit": 0}, "limit"),
        ("/debug/users", {"source": "elsewhere"}, "source"),
    ],
)
def test_metrics_validation(client: TestClient, path: str, params: dict, field: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert field in _fields(r)


def test_debug_views_paginate(client: TestClient, store: Store) -> None:
    sc.load(store)
    users = client.get("/debug/users", params={"limit": 2, "offset": 1}).json()
    assert users["total"] == 4 and [u["user_id"] for u in users["rows"]] == ["u2", "u3"]
    assert client.get("/debug/users", params={"source": "online"}).json()["total"] == 2  # u3, u5 from events
    assert client.get("/debug/items").json()["total"] == 10
    assert client.get("/debug/interactions", params={"user_id": "u1"}).json()["total"] == 2
    imps = client.get("/debug/impressions", params={"user_id": "u1"}).json()
    assert [r["recset_id"] for r in imps["rows"]] == [RECSETS["D"], RECSETS["A"]]  # newest first
    eng = client.get("/debug/engagements", params={"recset_id": RECSETS["A"], "limit": 4}).json()
    assert eng["total"] == 6 and len(eng["rows"]) == 4
    assert client.get("/debug/events", params={"user_id": "u3"}).json()["total"] == 2
    model = client.get("/debug/model").json()
    assert model["model"] is None and model["store"]["tables"]["engagements"] == 10


def test_prometheus_text(client: TestClient, store: Store) -> None:
    store.log_impression(str(uuid.uuid4()), "u1", "/popular", "popular", "v1", ["a"], [1.0], is_fallback=True)
    store.log_impression(str(uuid.uuid4()), "u1", "/popular", "popular", "v1", ["a"], [1.0], is_fallback=False)
    client.get("/debug/users")
    client.get("/debug/users")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'recommender_http_requests_total{method="GET",route="/debug/users",status="200"} 2.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert 'recommender_http_request_duration_seconds_count{route="/debug/users"} 2.0' in text
    assert 'recommender_fallbacks_total{endpoint="/popular",engine="popular"} 1.0' in text
    assert 'recommender_impressions_total{endpoint="/popular",engine="popular"} 2.0' in text


# ------------------------------------------------------------------------------- the real service app


@pytest.fixture
def service(tmp_path: Path, db_url: str):
    from app.config import Settings
    from app.service.http.app import create_app
    from tests.service.modeldir import write_model_dir

    model_dir = write_model_dir(tmp_path / "model", version="store-test-v1")
    settings = Settings(model_dir=model_dir, data_dir=tmp_path, database_url=db_url, impression_flush_seconds=0.05)
    with TestClient(create_app(settings)) as c:
        yield c


def test_through_create_app(service: TestClient) -> None:
    """A recommendation is logged; its engagement counts in PaC; /metrics shows the model version."""
    rec = service.get("/recommendations/u1", params={"limit": 3})
    assert rec.status_code == 200, rec.text
    body = rec.json()
    first = body["items"][0]["item_id"]
    r = service.post(
        "/events/engagement",
        json={
            "recset_id": body["recset_id"],
            "user_id": "u1",
            "item_id": first,
            "action_type": "click",
            "platform": "web",
        },
    )
    assert r.status_code == 201, r.text
    pac = service.get("/metrics/pac", params={"k": 3, "start_ts": time.time() - 60}).json()
    assert pac["impressions"] == 1 and pac["total_hits"] == 1
    assert pac["by_model_version"] == {
        "store-test-v1": {
            "impressions": 1,
            "pac_mean": pytest.approx(1 / 3),
            "pac_micro": pytest.approx(1 / 3),
            "total_hits": 1,
            "total_recommended": 3,
        }
    }
    summary = service.get("/metrics/summary").json()
    assert summary["requests"] == 1 and summary["catalogue_size"] == 12  # the serving model's catalogue
    assert summary["coverage"] == pytest.approx(3 / 12)
    text = service.get("/metrics").text
    assert "recommender_model_info{model_type=" in text and 'version="store-test-v1"' in text
    model = service.get("/debug/model").json()["model"]
    assert model["model_version"] == "store-test-v1" and model["metadata"]["item_ids"] == {"count": 12}
    # every kind of list is logged once: /similar and /popular too
    assert service.post("/similar", json={"item_id": first, "k": 2}).status_code == 200
    assert service.get("/popular", params={"k": 2}).status_code == 200
    logged = service.get("/debug/impressions").json()
    assert logged["total"] == 3 and {r["endpoint"] for r in logged["rows"]} >= {"/similar", "/popular"}
    assert service.post(
        "/events", json={"user_id": "brand-new", "item_id": "a1", "event": "click", "ts": int(time.time())}
    ).json()["new_user_ids"] == ["brand-new"]


def test_openapi_documents_the_store_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/events",
        "/events/engagement",
        "/metrics/pac",
        "/metrics/replay",
        "/metrics/summary",
        "/metrics",
        "/debug/users",
        "/debug/items",
        "/debug/interactions",
        "/debug/impressions",
        "/debug/engagements",
        "/debug/model",
    ):
        assert path in paths, path
    body = paths["/events"]["post"]["requestBody"]["content"]
    assert "application/x-ndjson" in body and body["application/json"]["example"][0]["event"] == "watch"
