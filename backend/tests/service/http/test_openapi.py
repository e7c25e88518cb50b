"""The OpenAPI document tells the truth: each operation documents exactly the status codes it answers.

Every code is provoked for real, through the guards, the routes and the error handlers, on three apps
that between them answer every code: one with keys (a client on another machine that sends them), one
without keys (the same client: admin routes refuse it), and one without a model and with an unreadable
model registry (503s). For each app the codes answered must be in its document; over the three, every
documented code must have been answered. Error bodies must have the documented shape.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.registry.versions import Registry
from app.service.http.app import create_app
from app.service.http.response_models import ErrorResponse, ValidationErrorResponse
from tests.service.conftest import make_settings

REMOTE = ("203.0.113.7", 40000)  # a client on the network (TEST-NET-3)
CLIENT = {"X-API-Key": "client-key"}
ADMIN = {"X-API-Key": "admin-key"}
WRONG = {"X-API-Key": "not-a-key"}
CROSS_SITE = {"Origin": "https://elsewhere.example"}
BODY_LIMIT, EVENTS_BODY_LIMIT = 2_000, 4_000
#: The body timeout arrives with the connection limits; where the setting exists, 408 is provoked too.
TIMED_BODIES = "body_timeout_seconds" in Settings.model_fields
LIMITS = {"max_body_bytes": BODY_LIMIT, "max_events_body_bytes": EVENTS_BODY_LIMIT}
if TIMED_BODIES:
    LIMITS["body_timeout_seconds"] = 0.2

Op = tuple[str, str]  # (method, path template)

CLIENT_GETS = ["/recommendations/{user_id}", "/recommendations", "/popular", "/items/{item_id}", "/items"]
CLIENT_POSTS = ["/recommend", "/similar", "/events/engagement", "/events"]
ADMIN_GETS = [
    "/models",
    "/models/{version}",
    "/metrics/pac",
    "/metrics/replay",
    "/metrics/summary",
    "/metrics",
    "/debug/users",
    "/debug/items",
    "/debug/interactions",
    "/debug/online/{user_id}",
    "/debug/events",
    "/debug/impressions",
    "/debug/engagements",
    "/debug/model",
]
#: An example URL of each templated path.
URLS = {
    "/recommendations/{user_id}": "/recommendations/u1",
    "/items/{item_id}": "/items/a1",
    "/models/{version}": "/models/v1",
    "/debug/online/{user_id}": "/debug/online/u1",
}
#: A request each operation answers with 422.
INVALID: dict[Op, dict[str, Any]] = {
    ("get", "/recommendations/{user_id}"): {"params": {"k": 0}},
    ("get", "/recommendations"): {"params": {"k": 2}},  # no user_id
    ("get", "/popular"): {"params": {"k": 0}},
    ("get", "/items/{item_id}"): {"url": "/items/%20"},  # blank after stripping
    ("get", "/items"): {"params": {"limit": 0}},
    ("post", "/recommend"): {"json": {"k": 0}},
    ("post", "/similar"): {"json": {}},
    ("post", "/events/engagement"): {"json": {}},
    ("post", "/events"): {"json": []},
    ("get", "/models/{version}"): {"url": "/models/-bad"},
    ("get", "/metrics/pac"): {"params": {"k": 0}},
    ("get", "/metrics/replay"): {"params": {"window_hours": 0}},
    ("get", "/metrics/summary"): {"params": {"since": "not a time"}},
    ("get", "/debug/online/{user_id}"): {"url": "/debug/online/" + "x" * 200},
    **{
        ("get", p): {"params": {"limit": 0}}
        for p in ("/debug/users", "/debug/items", "/debug/interactions", "/debug/events", "/debug/impressions")
    },
    ("get", "/debug/engagements"): {"params": {"offset": -1}},
}


class Answers:
    """The codes answered per operation, checked against the document of the app that answered."""

    def __init__(self) -> None:
        self.answered: dict[Op, set[int]] = {}
        self.documented: dict[Op, set[int]] = {}
        self.undocumented: list[str] = []
        self.bad_bodies: list[str] = []

    @contextmanager
    def app(self, settings: Settings, **client: Any) -> Iterator[Callable[..., httpx.Response]]:
        app = create_app(settings)
        doc = app.openapi()
        documented = {
            (method, path): {int(code) for code in op["responses"]}
            for path, item in doc["paths"].items()
            for method, op in item.items()
        }
        for op, codes in documented.items():
            self.documented.setdefault(op, set()).update(codes)
        with TestClient(app, **client) as c:

            def call(method: str, path: str, expect: int, *, url: str | None = None, **kwargs: Any) -> httpx.Response:
                if kwargs.pop("stall", False):
                    status = c.portal.call(stalled_post, app, url or path, kwargs.get("headers", {}), REMOTE)
                    r = httpx.Response(status)
                else:
                    r = c.request(method.upper(), url or URLS.get(path, path), **kwargs)
                assert r.status_code == expect, (method, path, kwargs, r.status_code, r.text[:300])
                op = (method, path)
                self.answered.setdefault(op, set()).add(expect)
                if expect not in documented.get(op, set()):
                    self.undocumented.append(
                        f"{method.upper()} {path} answered {expect} (documented: {documented.get(op)})"
                    )
                if expect >= 400 and r.content:
                    model = ValidationErrorResponse if expect == 422 else ErrorResponse
                    try:
                        model.model_validate(r.json())
                    except ValueError as exc:
                        self.bad_bodies.append(f"{method.upper()} {path} {expect}: {exc}")
                return r

            yield call


async def stalled_post(app: Any, path: str, headers: dict[str, str], client: tuple[str, int]) -> int:
    """POST a body that never arrives (raw ASGI: a test client sends the whole body at once); the status."""
    answer: dict[str, int] = {}

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(30)  # far beyond the body timeout: the guard gives up first
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": client,
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return answer["status"]


@pytest.fixture(scope="module")
def answers(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Answers:
    out = Answers()
    tmp = tmp_path_factory.mktemp("openapi")
    own_model = tmp / "model"
    shutil.copytree(model_dir, own_model)
    registry = tmp / "registry"
    Registry(registry).register(model_dir)  # registered, not promoted: the service serves its model_dir
    keys = {"api_key": "client-key", "admin_key": "admin-key", "registry_dir": registry}
    with out.app(make_settings(own_model, tmp / "keys", **keys, **LIMITS), client=REMOTE) as call:
        provoke_with_keys(call, own_model)
    with out.app(make_settings(model_dir, tmp / "open", **LIMITS), client=REMOTE) as call:
        for path in ADMIN_GETS:
            call("get", path, 403)  # only clients on the service's machine, while no admin key is set
        call("post", "/admin/reload", 403)
        call("get", "/health", 200)
        call("get", "/ready", 200)
    broken = tmp / "broken-registry"
    broken.mkdir()
    (broken / "registry.json").write_text("{not json")
    no_model = tmp / "no-model"
    no_model.mkdir()
    with out.app(make_settings(no_model, tmp / "none", registry_dir=broken, **LIMITS)) as call:
        for path in CLIENT_GETS:
            call("get", path, 503, params={"user_id": "u1"} if path == "/recommendations" else None)
        call("post", "/recommend", 503, json={"user_id": "u1"})
        call("post", "/similar", 503, json={"item_id": "a1"})
        call("get", "/ready", 503)
        call("post", "/admin/reload", 503)  # no model to keep serving
        call("get", "/models", 503)  # the registry cannot be read
        call("get", "/models/{version}", 503)
        call("get", "/health", 200)
    return out


def provoke_with_keys(call: Callable[..., httpx.Response], own_model: Path) -> None:
    """Every code the app with keys answers, for a client on another machine."""
    for path in CLIENT_GETS:
        call("get", path, 401)
        call("get", path, 403, headers=WRONG)
    for path in ADMIN_GETS:
        call("get", path, 401)
        call("get", path, 403, headers=CLIENT)  # the client key is not the admin key
    for path in [*CLIENT_POSTS, "/admin/reload"]:
        key = ADMIN if path == "/admin/reload" else CLIENT
        call("post", path, 401)
        call("post", path, 403, headers=WRONG)
        call("post", path, 403, headers={**key, **CROSS_SITE}, json={})
        call("post", path, 415, headers={**key, "Content-Type": "text/plain"}, content=b"{}")
        limit = EVENTS_BODY_LIMIT if path == "/events" else BODY_LIMIT
        call("post", path, 413, headers=key, json={"pad": "x" * limit})
        if TIMED_BODIES and path != "/admin/reload":  # the reload reads no body, so nothing stalls it
            call("post", path, 408, headers=key, stall=True)
    for (method, path), request in INVALID.items():
        call(
            method,
            path,
            422,
            headers=ADMIN if path.startswith(("/models", "/metrics", "/debug")) else CLIENT,
            **request,
        )

    # what each route answers itself
    listed = call("get", "/recommendations/{user_id}", 200, headers=CLIENT, params={"k": 2}).json()
    call("get", "/recommendations", 200, headers=CLIENT, params={"user_id": "u1"})
    call("post", "/recommend", 200, headers=CLIENT, json={"user_id": "u1"})
    call("post", "/similar", 200, headers=CLIENT, json={"item_id": "a1"})
    call("post", "/similar", 404, headers=CLIENT, json={"item_id": "no-such-item"})
    call("get", "/popular", 200, headers=CLIENT)
    call("get", "/items/{item_id}", 200, headers=CLIENT)
    call("get", "/items/{item_id}", 404, headers=CLIENT, url="/items/no-such-item")
    call("get", "/items", 200, headers=CLIENT, params={"query": "a"})
    engagement = {"recset_id": listed["recset_id"], "user_id": "u1", "item_id": listed["items"][0]["item_id"]}
    once = {**CLIENT, "Idempotency-Key": "engagement-1"}
    call("post", "/events/engagement", 201, headers=once, json={**engagement, "action_type": "click"})
    replay = call("post", "/events/engagement", 200, headers=once, json={**engagement, "action_type": "click"})
    assert replay.json()["duplicate"] is True
    unknown = {**engagement, "recset_id": str(uuid.uuid4()), "action_type": "click"}
    call("post", "/events/engagement", 404, headers=CLIENT, json=unknown)
    call(
        "post",
        "/events/engagement",
        400,  # FastAPI reads this body itself, and answers 400 for bytes that are not UTF-8
        headers={**CLIENT, "Content-Type": "application/json"},
        content=b'{"user_id": "\xff"}',
    )
    event = {"user_id": "u9", "item_id": "a1", "event": "click", "ts": 1_767_225_600}
    once = {**CLIENT, "Idempotency-Key": "events-1"}
    call("post", "/events", 201, headers=once, json=[event])
    assert call("post", "/events", 200, headers=once, json=[event]).json()["duplicate"] is True

    for path in ADMIN_GETS:
        call("get", path, 200, headers=ADMIN, url="/models/test-v1" if path == "/models/{version}" else None)
    call("get", "/models/{version}", 404, headers=ADMIN, url="/models/v9")
    call("post", "/admin/reload", 200, headers=ADMIN)
    (own_model / "arrays.npz").write_bytes(b"broken")
    call("post", "/admin/reload", 409, headers=ADMIN)  # the old model keeps serving
    call("get", "/health", 200)
    call("get", "/ready", 200)


def test_every_code_answered_is_documented(answers: Answers) -> None:
    assert answers.undocumented == []


def test_every_documented_code_is_answered(answers: Answers) -> None:
    missing = {
        f"{method.upper()} {path}": sorted(codes - answers.answered.get((method, path), set()))
        for (method, path), codes in answers.documented.items()
        if codes - answers.answered.get((method, path), set())
    }
    assert missing == {}


def test_error_bodies_have_the_documented_shape(answers: Answers) -> None:
    assert answers.bad_bodies == []


def test_errors_document_the_shape_the_handlers_send(model_dir: Path, tmp_path: Path) -> None:
    doc = create_app(make_settings(model_dir, tmp_path, api_key="k")).openapi()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is never sent
    for path, item in doc["paths"].items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/json"], (method, path, code)
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("ValidationErrorResponse" if code == "422" else "ErrorResponse"), (path, code)


def test_the_document_states_the_limits_and_keys_of_the_settings(model_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(model_dir, tmp_path, admin_key="a", max_body_bytes=3 * 2**20)
    doc = create_app(settings).openapi()
    recommend = doc["paths"]["/recommend"]["post"]["responses"]
    assert "3145728 bytes (3 MiB)" in recommend["413"]["description"]
    events = doc["paths"]["/events"]["post"]["responses"]
    assert f"{settings.max_events_body_bytes} bytes" in events["413"]["description"]
    assert "application/x-ndjson" in events["415"]["description"]
    # only the admin key is set: admin routes need it, client routes are open
    assert doc["paths"]["/debug/users"]["get"]["security"] and "401" in doc["paths"]["/debug/users"]["get"]["responses"]
    assert (
        "security" not in doc["paths"]["/popular"]["get"] and "401" not in doc["paths"]["/popular"]["get"]["responses"]
    )
    assert doc["components"]["securitySchemes"]["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    # a bound a route enforces itself stays; max_k bounds the list endpoints
    params = {p["name"]: p["schema"] for p in doc["paths"]["/debug/users"]["get"]["parameters"]}
    assert params["limit"]["maximum"] == 1000
    params = {p["name"]: p["schema"] for p in doc["paths"]["/items"]["get"]["parameters"]}
    assert params["limit"]["maximum"] == settings.max_k


def test_event_and_action_types_are_enumerated(model_dir: Path, tmp_path: Path) -> None:
    weights = {"click": 1.0, "watch": 3.0, "skip": 0.0}
    doc = create_app(make_settings(model_dir, tmp_path, event_weights=weights)).openapi()
    engagement = doc["components"]["schemas"]["EngagementIn"]["properties"]["action_type"]
    assert engagement["enum"] == ["click", "skip", "watch"]
    body = doc["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    one, batch = body["anyOf"]
    assert (
        one["properties"]["event"]["enum"]
        == batch["items"]["properties"]["event"]["enum"]
        == ["click", "skip", "watch"]
    )


def test_an_id_in_a_path_reaches_its_route_whatever_it_holds(client: TestClient) -> None:
    """Ids may hold a "/" (sent as %2F): the router answered a bare 404 for them, undocumented; a newline
    in one is the id's own 422, not the router's 404."""
    assert client.post("/events", json=[{"user_id": "a/b", "item_id": "x/y", "event": "click", "ts": 1_767_225_600}])
    assert client.get("/recommendations/a%2Fb").json()["user_id"] == "a/b"
    assert client.get("/debug/online/a%2Fb").json()["user_id"] == "a/b"
    assert client.get("/items/x%2Fy").json()["item_id"] == "x/y"  # a 404 of the route: seen only in events
    for url in ("/recommendations/%0A", "/items/%0A", "/debug/online/%0A", "/recommendations/"):
        assert client.get(url).status_code == 422, url
