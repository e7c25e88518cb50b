"""Bad requests get 422 naming the field and the reason; nothing reaches a raw 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.service.core import strategies
from app.service.http.app import create_app
from tests.service.conftest import make_settings


def error_fields(r) -> list[str]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"]
    for e in body["detail"]:
        assert e["reason"] and e["location"] in ("body", "query", "path")
    return [e["field"] for e in body["detail"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),  # max_k = 50 in the test settings
        ({"limit": "ten"}, "limit"),
        ({"engine": "magic"}, "engine"),
        ({"platform": "a b"}, "platform"),
        ({"colour": "red"}, "colour"),  # unknown parameter
    ],
)
def test_path_form_query_validation(client, params, field):
    assert field in error_fields(client.get("/recommendations/u1", params=params))


def test_k_above_max_names_the_limit(client):
    r = client.get("/recommendations", params={"user_id": "u1", "k": 51})
    assert error_fields(r) == ["k"] and "50" in r.json()["detail"][0]["reason"]


def test_query_form_needs_a_user(client):
    assert error_fields(client.get("/recommendations", params={"k": 3})) == ["user_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u1", "k": 0}, "k"),
        ({"user_id": "u1", "k": 1000}, "k"),
        ({"user_id": "u1", "engine": "best"}, "engine"),
        ({"user_id": "u1", "year_min": 2000, "year_max": 1990}, "year_max"),
        ({"user_id": "u1", "year_min": -5}, "year_min"),
        ({"user_id": "u1", "genre": ["Drama"]}, "genre"),  # unknown field (typo of genres)
        ({"user_id": "x" * 129}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "   "}, "user_id"),
        ({"user_id": "bad\nid"}, "user_id"),
        ({"user_id": "u1", "exclude_seen": "perhaps"}, "exclude_seen"),
        ({"user_id": "u1", "seed_item_ids": "a1"}, "seed_item_ids"),
        ({"user_id": "u1", "seed_item_ids": [""]}, "seed_item_ids.0"),
    ],
)
def test_recommend_body_validation(client, body, field):
    assert field in error_fields(client.post("/recommend", json=body))


def test_numeric_ids_are_accepted_as_strings(client):
    r = client.post("/recommend", json={"user_id": 12345, "k": 1})
    assert r.status_code == 200 and r.json()["user_id"] == "12345"


def test_ids_are_stripped_like_ingested_ids_and_a_blank_one_is_422(client):
    assert error_fields(client.get("/recommendations/%20")) == ["user_id"]
    r = client.get("/recommendations/%20u1%20", params={"limit": 2})
    assert r.status_code == 200 and r.json()["user_id"] == "u1" and r.json()["fallback_used"] is False
    assert error_fields(client.get("/items/%20")) == ["item_id"]
    assert client.get("/items/%20a1").json()["item_id"] == "a1"
    assert client.post("/similar", json={"item_id": " a1 ", "k": 1}).status_code == 200


def test_invalid_json_and_wrong_body_type(client):
    r = client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/recommend", json=[1, 2])
    assert r.status_code == 422


def test_similar_and_popular_validation(client):
    assert "item_id" in error_fields(client.post("/similar", json={"k": 3}))
    assert "k" in error_fields(client.post("/similar", json={"item_id": "a1", "k": 51}))
    assert "year_max" in error_fields(client.get("/popular", params={"year_min": 1999, "year_max": 1990}))
    assert "genre" in error_fields(client.get("/popular", params={"genre": "Western"}))
    assert "trending" in error_fields(client.get("/popular", params={"trending": "sometimes"}))
    assert "item_id" in error_fields(client.get("/items/" + "x" * 129))


def test_path_ids_with_control_characters_are_rejected(client):
    assert "user_id" in error_fields(client.get("/recommendations/bad%01id"))


def test_an_unexpected_error_is_a_json_500_without_a_trace(model_dir, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(strategies, "recommend", boom)
    app = create_app(make_settings(model_dir, tmp_path))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/recommendations/u1")
    assert r.status_code == 500
    body = r.json()
    assert body["error_id"] and "secret" not in r.text and "Traceback" not in r.text


def test_openapi_documents_every_endpoint_with_examples(client):
    spec = client.get("/openapi.json").json()
    wanted = {
        ("get", "/recommendations/{user_id}"),
        ("get", "/recommendations"),
        ("post", "/recommend"),
        ("post", "/similar"),
        ("get", "/popular"),
        ("get", "/items/{item_id}"),
        ("get", "/items"),
        ("get", "/health"),
        ("get", "/ready"),
        ("post", "/admin/reload"),
    }
    schemas = spec["components"]["schemas"]

    def has_example(op) -> bool:
        for p in op.get("parameters", []):
            if "example" in p or "examples" in p or "examples" in p.get("schema", {}):
                return True
        for resp in op.get("responses", {}).values():
            for media in resp.get("content", {}).values():
                if "example" in media or "examples" in media:
                    return True
                ref = media.get("schema", {}).get("$ref", "")
                if ref and "examples" in schemas.get(ref.rsplit("/", 1)[-1], {}):
                    return True
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        ref = body.get("schema", {}).get("$ref", "")
        return bool(ref and "examples" in schemas.get(ref.rsplit("/", 1)[-1], {}))

    for method, path in wanted:
        op = spec["paths"][path][method]
        assert op.get("summary"), path
        assert has_example(op), (method, path)
    assert client.get("/docs").status_code == 200


def test_the_openapi_document_states_the_largest_k(model_dir, tmp_path):
    """k/limit had no maximum in the schema, but above max_k a request is a 422."""
    from app.service.http.app import create_app
    from tests.service.conftest import make_settings

    doc = create_app(make_settings(model_dir, tmp_path, max_k=77)).openapi()

    def maximum(schema: dict) -> int | None:
        return next((b.get("maximum") for b in [schema, *schema.get("anyOf", [])] if b.get("type") == "integer"), None)

    params = [p for p in doc["paths"]["/recommendations/{user_id}"]["get"]["parameters"] if p["name"] in ("k", "limit")]
    assert [maximum(p["schema"]) for p in params] == [77, 77]
    body = doc["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert maximum(body["properties"]["k"]) == 77
