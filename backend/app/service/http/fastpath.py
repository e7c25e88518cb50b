"""Every hot-path workaround of the HTTP layer, each with what it saves (FastAPI and Starlette are pinned in
``requirements.txt`` to the versions these were measured and tested on).

Measured with ``benchmarks/serving.py`` and ``benchmarks/serving_ab.py`` (server CPU per request,
one worker, ML-100K model, concurrency 8). The hot endpoints (the recommendation routes and
``/health``) are ``DirectRoute``s that validate their own input with ``parse_query`` /
``parse_body`` / ``parse_path`` and are documented with ``query_parameters`` / ``json_body`` /
``path_parameter``; every other route is an ordinary FastAPI route.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, get_origin
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import State
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)
ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class OrjsonResponse(JSONResponse):
    """A JSON body rendered once with orjson (NumPy values allowed). Handlers return it with plain dicts:
    FastAPI's own encoder walking the response cost ~40% of the throughput of the hot endpoints."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=ORJSON_OPTIONS)


class DirectRoute(APIRoute):
    """An ``APIRoute`` whose endpoint takes only the ``Request`` and is called as it is.

    Saves about a sixth of a ``/recommendations`` request's CPU: for every request FastAPI's handler
    solves the endpoint's dependency graph, builds an error context, checks the response and opens two
    exit stacks, even when the only parameter is the ``Request``. Starlette's ``Route.handle`` still
    answers 405 for other methods; errors raised by the endpoint reach the app's exception handlers
    through Starlette's ``ExceptionMiddleware``. OpenAPI is generated from the declared metadata."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        params = list(inspect.signature(endpoint).parameters.values())
        if (
            not inspect.iscoroutinefunction(endpoint)
            or len(params) != 1
            or params[0].annotation not in (Request, "Request")
        ):
            raise TypeError(f"DirectRoute {path}: the endpoint must be `async def f(request: Request) -> Response`")
        if kwargs.get("max_body_size") is not None:
            raise TypeError(f"DirectRoute {path}: max_body_size needs FastAPI's own request handling")
        super().__init__(path, endpoint, **kwargs)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app


class AppState(State):
    """``app.state`` whose entries are also plain instance attributes (``create_app`` installs it).

    Saves ~1.5 us per read, and a request reads several: Starlette's ``State`` finds an entry only
    after the normal attribute lookup has failed (an AttributeError raised and caught). Every write
    goes to both places, so ``state.x``, ``state["x"]`` and ``state._state`` agree."""

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


def add_routes(app: FastAPI, routers: list[APIRouter]) -> None:
    """Put the routers' routes in the app's own route list, hot routes first.

    Saves about a third of a ``/health`` request's CPU with eight routers: since FastAPI 0.137
    ``include_router`` includes lazily, and every request walks the tree of included routers (matching
    each twice). The routers here have no prefix, dependencies or callbacks, so the routes are the same
    objects either way (paths, tags and OpenAPI unchanged). Starlette tries routes in order, so the
    direct routes go first and FastAPI's /docs, /redoc and /openapi.json (which it puts first) last."""
    for router in routers:
        app.router.routes.extend(router.routes)
    app.router.routes.sort(key=lambda route: not isinstance(route, DirectRoute))


def telemetry_off(on: bool) -> dict[str, Any]:
    """``FastAPI(...)`` keyword arguments that keep its built-in OpenTelemetry instrumentation off unless asked
    for: it looks up the global OTel providers on every request, ~10% of a ``/health`` request's CPU."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": on, "metrics": on, "logs": on}}


# ----- input validation inside the direct routes --------------------------------------------------------------
def _relocate(exc: ValidationError, location: str, prefix: tuple[Any, ...] = ()) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": (location, *prefix, *e["loc"])} for e in exc.errors(include_url=False)])


def parse_query(request: Request, model: type[M]) -> M:
    """Validate the query string with ``model``: the same rules and 422s as a FastAPI query model (unknown
    parameters rejected, errors located in ``query``). Saves a third of a ``/popular`` request's CPU:
    FastAPI re-inspects the model's annotations on every request. A repeated parameter keeps its last
    value, unless the field is a list (``genre=a&genre=b``)."""
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    for name, value in _query_pairs(request.scope["query_string"].decode("latin-1")):
        if name in lists:
            data.setdefault(name, []).append(value)
        else:
            data[name] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _relocate(exc, "query") from None


def _query_pairs(qs: str) -> list[tuple[str, str]]:
    """``parse_qsl(qs, keep_blank_values=True)``; a plain split when nothing is escaped (3x cheaper), and
    no multi-dict as Starlette's ``request.query_params`` builds."""
    if "%" in qs or "+" in qs:
        return parse_qsl(qs, keep_blank_values=True)
    return [(name, value) for name, _, value in (part.partition("=") for part in qs.split("&") if part)]


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, f in model.model_fields.items() if get_origin(f.annotation) is list)


async def parse_body(request: Request, model: type[M]) -> M:
    """Validate a JSON body with ``model``: pydantic-core parses and validates the bytes in one pass
    (errors located in ``body``, as FastAPI's are)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _relocate(exc, "body") from None


def parse_path(request: Request, name: str, adapter: TypeAdapter[Any]) -> Any:
    """Validate one path parameter (422 located in ``path``)."""
    try:
        return adapter.validate_python(request.path_params[name])
    except ValidationError as exc:
        raise _relocate(exc, "path", (name,)) from None


# ----- OpenAPI entries for what the direct routes validate themselves -----------------------------------------
def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """OpenAPI parameter objects for a query model, so /docs shows the same parameters, types, defaults and
    examples as for FastAPI-parsed ones."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        examples = prop.pop("examples", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        if examples:
            param["example"] = examples[0]
        out.append(param)
    return out


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body validated by ``parse_body``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def path_parameter(name: str, adapter: TypeAdapter[Any], description: str, example: str) -> dict[str, Any]:
    schema = adapter.json_schema()
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
        "example": example,
    }
