"""Seeded random requests: whatever a client sends, the answer is a 2xx or a 4xx with a message, never a 500."""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.service.http.app import create_app
from tests.service.conftest import make_settings
from tests.service.modeldir import ITEM_IDS, USER_IDS

#: Values that have broken services before: blanks, controls, huge and negative numbers, wrong types.
NASTY = [
    "",
    " ",
    "  u1 ",
    "\t",
    "\x00",
    "\x7f",
    "é",
    "☃",
    "𝔘",
    "a" * 129,
    "a" * 5000,
    "%",
    "%zz",
    "+",
    "&",
    "=",
    "null",
    "NaN",
    "Infinity",
    "-1",
    "0",
    "1e309",
    "99999999999999999999",
    "1.5",
    "true",
    "[]",
    "{}",
    "Comedy",
    "comedy ",
    "Action",
    "1990",
    "3001",
    *USER_IDS[:3],
    *ITEM_IDS[:3],
]
JSON_NASTY = [
    None,
    True,
    False,
    0,
    -1,
    1,
    10,
    51,
    2**63,
    -(2**63),
    1.5,
    float("1e308"),
    "",
    " ",
    "x" * 200,
    [],
    [""],
    ["Comedy", "Nope"],
    ["a1"] * 3,
    [None],
    {},
    {"a": 1},
    "Comedy",
    "u1",
    "a1",
    1995,
    1800,
    3001,
]
GET_ROUTES = {
    "/recommendations/{id}": ["limit", "engine", "platform", "exclude_seen"],
    "/recommendations": ["user_id", "k", "engine", "platform"],
    "/popular": ["k", "genre", "year_min", "year_max", "trending", "user_id", "exclude_seen", "platform"],
    "/items": ["query", "genre", "limit"],
    "/items/{id}": [],
    "/metrics/pac": ["k", "window_hours", "start", "end", "platform"],
    "/metrics/replay": ["k", "start", "end"],
    "/debug/impressions": ["limit", "offset", "user_id"],
}
POST_ROUTES = {
    "/recommend": [
        "user_id",
        "k",
        "engine",
        "exclude_seen",
        "exclude_items",
        "genres",
        "year_min",
        "year_max",
        "seed_item_ids",
        "seed_genres",
        "platform",
    ],
    "/similar": ["item_id", "k", "user_id", "exclude_seen", "genres", "year_min", "year_max", "exclude_items"],
    "/events/engagement": ["recset_id", "user_id", "item_id", "action_type", "platform", "ts"],
    "/events": ["user_id", "item_id", "event", "ts", "rating", "platform"],
}


@pytest.fixture(scope="module")
def fuzz_client(model_dir, tmp_path_factory):
    app = create_app(make_settings(model_dir, tmp_path_factory.mktemp("fuzz-data")))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _check(r, what: str) -> None:
    assert r.status_code < 500, f"{what} -> {r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        body = r.json()
        assert body.get("message") or body.get("detail"), what


def test_random_get_requests_never_get_a_500(fuzz_client):
    rng = random.Random(20261128)
    for _ in range(400):
        route = rng.choice(list(GET_ROUTES))
        path = route.replace("{id}", quote(rng.choice(NASTY), safe=""))
        names = rng.sample(GET_ROUTES[route], rng.randint(0, len(GET_ROUTES[route]))) if GET_ROUTES[route] else []
        params = [(n, rng.choice(NASTY)) for n in names]
        if rng.random() < 0.2:
            params.append((rng.choice(NASTY) or "x", rng.choice(NASTY)))  # an unknown or repeated parameter
        r = fuzz_client.get(path, params=params)
        _check(r, f"GET {path} {params}")


def test_random_post_bodies_never_get_a_500(fuzz_client):
    rng = random.Random(20261129)
    for _ in range(400):
        route = rng.choice(list(POST_ROUTES))
        fields = POST_ROUTES[route]
        body = {n: rng.choice(JSON_NASTY) for n in rng.sample(fields, rng.randint(0, len(fields)))}
        roll = rng.random()
        if roll < 0.1:
            r = fuzz_client.post(
                route,
                content=rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"k": NaN}']),
                headers={"content-type": "application/json"},
            )
        elif roll < 0.15:
            r = fuzz_client.post(route, json=[body, body])  # a list where an object is expected (a batch for /events)
        else:
            r = fuzz_client.post(route, json=body)
        _check(r, f"POST {route} {body}")
