"""The request path's plumbing: DirectRoute, the flat route list, AppState."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Request

from app.service.http.app import create_app
from app.service.http.fastpath import AppState, DirectRoute, OrjsonResponse
from tests.service.conftest import make_settings


def test_direct_route_takes_only_async_request_handlers():
    router = APIRouter(route_class=DirectRoute)

    async def ok(request: Request) -> OrjsonResponse:
        return OrjsonResponse({})

    def sync(request: Request) -> OrjsonResponse:
        return OrjsonResponse({})

    async def two(request: Request, k: int) -> OrjsonResponse:
        return OrjsonResponse({})

    router.get("/ok")(ok)
    with pytest.raises(TypeError, match="max_body_size"):
        router.get("/big", max_body_size=10)(ok)
    for bad in (sync, two):
        with pytest.raises(TypeError, match="async def f\\(request: Request\\)"):
            router.get("/bad")(bad)


def test_routes_are_in_the_apps_own_list(model_dir, tmp_path):
    """No lazily included routers (they have no path): every entry is a route, matched once per request."""
    app = create_app(make_settings(model_dir, tmp_path / "data"))
    paths = [getattr(r, "path_format", r.path) for r in app.router.routes]
    assert {"/recommendations/{user_id}", "/health", "/debug/users", "/metrics"} <= set(paths)


def test_direct_routes_answer_405_for_other_methods_and_errors_through_the_handlers(client):
    r = client.delete("/recommendations/u1")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    assert client.post("/similar", json={"item_id": "nope", "k": 3}).status_code == 404  # ApiError handler
    assert client.get("/recommendations/u1", params={"limit": 0}).json()["detail"][0]["field"] == "limit"  # 422


def test_every_way_of_writing_is_seen_by_every_way_of_reading():
    state = AppState()
    state.runtime = "r1"
    assert state.runtime == state["runtime"] == state._state["runtime"] == "r1"
    assert "runtime" in vars(state)  # found by the normal lookup, not by State.__getattr__
    state["runtime"] = "r2"
    assert state.runtime == state._state["runtime"] == "r2"
    del state.runtime
    with pytest.raises(AttributeError):
        _ = state.runtime
    assert "runtime" not in state._state
    state["store"] = "s"
    del state["store"]
    with pytest.raises(AttributeError):
        _ = state.store
