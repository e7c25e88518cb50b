"""The OpenAPI document (``/openapi.json``, ``/docs``) as the service really answers, built once per app.

FastAPI documents what each route declares. The answers that come from elsewhere are added here, when
the document is first built, so every operation lists every status code it can answer:

- the guards' answers, read from the middleware installed on the app (``access``, ``guards``), so the
  document follows their configuration: 401/403 for the key a route needs (and the security scheme),
  403 for a cross-site write, 413 with the route's body limit, 415 for a body that is not JSON, 408 for
  a body that stalls;
- 400 for a body that is not UTF-8, where FastAPI itself reads the JSON body (it answers that before
  any of our code runs; the other routes read their own body and answer 422);
- the error shape the handlers produce (``responses``): ``ErrorResponse`` for every error, and
  ``ValidationErrorResponse`` for a 422 instead of FastAPI's ``HTTPValidationError``, which is never sent;
- what is a setting: the largest ``k``/``limit`` (``max_k``) and the event and action types
  (``event_weights``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.config import Settings
from app.service.http.access import AccessGuard, audience
from app.service.http.fastpath import DirectRoute
from app.service.http.guards import JSON_TYPES, BodyLimit, WriteGuard
from app.service.http.response_models import ErrorResponse, ValidationErrorResponse

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: Methods whose body ``WriteGuard`` checks, and those whose body ``BodyLimit`` counts.
WRITES = ("post", "put", "patch", "delete")
WITH_BODY = ("post", "put", "patch")
#: FastAPI's own 422 shape, replaced by the one the error handler sends.
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
KEY_SCHEMES = [{"ApiKey": []}, {"BearerKey": []}]


def install(app: FastAPI, settings: Settings) -> None:
    """``app.openapi()`` completed as the module docstring says; call it after the guards are installed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            _Document(doc, _guards(app), _parsed_bodies(app), settings).complete()
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@dataclass
class Guards:
    """What the installed guards answer (None/empty: that guard is not installed)."""

    api_key: bool = False
    admin_key: bool = False
    access: bool = False
    write_types: dict[str, tuple[str, ...]] | None = None
    body_limit: int | None = None
    body_limits: dict[str, int] = field(default_factory=dict)
    body_timeout: float = 0.0

    def limit(self, path: str) -> int | None:
        return self.body_limits.get(path, self.body_limit)


def _guards(app: FastAPI) -> Guards:
    """The guards' configuration, from the keyword arguments they were added with (``guards.install``)."""
    found = Guards()
    for middleware in app.user_middleware:
        kwargs = middleware.kwargs
        if middleware.cls is AccessGuard:
            found.access = True
            found.api_key = bool(kwargs.get("api_key"))
            found.admin_key = bool(kwargs.get("admin_key"))
        elif middleware.cls is WriteGuard:
            found.write_types = dict(kwargs.get("types") or {})
        elif middleware.cls is BodyLimit:
            found.body_limit = int(kwargs["default"])
            found.body_limits = dict(kwargs.get("limits") or {})
            found.body_timeout = float(kwargs.get("idle_timeout") or 0)
    return found


def _parsed_bodies(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of the operations whose JSON body FastAPI reads (the direct routes read their own)."""
    out = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and not isinstance(route, DirectRoute) and route.dependant.body_params:
            out.update((route.path_format, m.lower()) for m in route.methods)
    return out


def size(n: int) -> str:
    """``1048576`` -> ``1048576 bytes (1 MiB)``: the exact limit, and one a person can read."""
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n} bytes ({n / factor:g} {unit})"
    return f"{n} bytes"


class _Document:
    def __init__(self, doc: dict[str, Any], guards: Guards, parsed_bodies: set[tuple[str, str]], settings: Settings):
        self.doc = doc
        self.guards = guards
        self.parsed_bodies = parsed_bodies
        self.settings = settings
        self.schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
        self.error = self.component(ErrorResponse)
        self.invalid = self.component(ValidationErrorResponse)

    def component(self, model: type[BaseModel]) -> dict[str, str]:
        """A ``$ref`` to ``model``, added to the components if no route declared it."""
        if model.__name__ not in self.schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                self.schemas.setdefault(name, sub)
            self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.doc.get("paths", {}).items():
            for method, op in item.items():
                if method in METHODS and isinstance(op, dict):
                    yield path, method, op

    def complete(self) -> None:
        for path, method, op in self.operations():
            self.access(path, op)
            if method in WRITES:
                self.writes(path, method, op)
            if (path, method) in self.parsed_bodies:
                self.add(op, 400, "The body is not UTF-8 text, so it cannot be read as JSON.")
            if op.get("parameters") or op.get("requestBody"):
                self.add(op, 422, "Invalid parameter or body: `detail` names each field and the reason.", more=False)
            self.error_bodies(op)
            self.settings_in_parameters(op)
        for schema in self.body_schemas():
            self.settings_in_body(schema)
        for name in FASTAPI_VALIDATION:
            if f'"#/components/schemas/{name}"' not in json.dumps(self.doc.get("paths", {})):
                self.schemas.pop(name, None)

    # ----- the guards' answers ---------------------------------------------------------------------------
    def access(self, path: str, op: dict[str, Any]) -> None:
        """401/403 for the key the route needs (``access.AccessGuard``), as configured."""
        if not self.guards.access:
            return
        who = audience(path)
        sent = "in the `X-API-Key` header (or `Authorization: Bearer <key>`)"
        if who == "admin" and self.guards.admin_key:
            self.secure(op)
            self.add(op, 401, f"No key was sent: this route needs the admin key {sent}.")
            self.add(op, 403, "The key sent is not the admin key.")
        elif who == "admin":
            self.add(
                op,
                403,
                "This route answers only clients on the service's own machine until an admin key is set "
                "(`RECOMMENDER_ADMIN_KEY`); then it answers anyone who sends it.",
            )
        elif who == "client" and self.guards.api_key:
            self.secure(op)
            either = " (or the admin key)" if self.guards.admin_key else ""
            self.add(op, 401, f"No key was sent: this route needs the API key{either} {sent}.")
            wrong = "neither the API key nor the admin key" if self.guards.admin_key else "not the API key"
            self.add(op, 403, f"The key sent is {wrong}.")

    def secure(self, op: dict[str, Any]) -> None:
        """The key as a security requirement, so /docs offers "Authorize" and sends it."""
        op["security"] = [dict(scheme) for scheme in KEY_SCHEMES]
        self.doc["components"].setdefault(
            "securitySchemes",
            {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "BearerKey": {"type": "http", "scheme": "bearer", "description": "The same key, as a bearer token."},
            },
        )

    def writes(self, path: str, method: str, op: dict[str, Any]) -> None:
        """``WriteGuard`` (403 cross-site, 415 not JSON) and ``BodyLimit`` (413, 408) on a write."""
        if self.guards.write_types is not None:
            self.add(
                op,
                403,
                "A write from a web page on another site (an `Origin` that is neither this service nor an "
                "allowed origin) is refused.",
            )
            types = [f"`{t}`" for t in self.guards.write_types.get(path, JSON_TYPES)]
            names = types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]
            self.add(op, 415, f"The body's `Content-Type` is not {names}.")
        limit = self.guards.limit(path)
        if limit is not None and method in WITH_BODY:
            # A Content-Length above the limit is refused before any route runs; a body is timed only
            # while a route reads it, so 408 is for the operations that take one.
            self.add(op, 413, f"The body is larger than {size(limit)}.")
            if self.guards.body_timeout > 0 and "requestBody" in op:
                self.add(
                    op,
                    408,
                    f"The body stalled: no data arrived for {self.guards.body_timeout:g} seconds (the connection "
                    "is closed).",
                )

    # ----- error bodies ----------------------------------------------------------------------------------
    def add(self, op: dict[str, Any], code: int, reason: str, more: bool = True) -> None:
        """``reason`` for answering ``code``: a new response, or one more reason of an existing one (unless
        not ``more``: a general reason, when the route says more precisely why)."""
        responses = op.setdefault("responses", {})
        entry = responses.get(str(code))
        if entry is None:
            responses[str(code)] = {"description": reason}
            return
        description = entry.get("description", "")
        if code == 422 and description == "Validation Error":  # FastAPI's default says nothing more
            entry["description"] = reason
        elif more and reason not in description:
            reasons = [r.removeprefix("- ") for r in description.split("\n")] if description else []
            entry["description"] = "\n".join(f"- {r}" for r in [*reasons, reason])

    def error_bodies(self, op: dict[str, Any]) -> None:
        """Every 4xx/5xx as the handlers send it: JSON in ``ErrorResponse`` (422: ``ValidationErrorResponse``);
        an example a route gave is kept."""
        for code, entry in op.get("responses", {}).items():
            if code[:1] not in ("4", "5"):
                continue
            media = entry.setdefault("content", {}).setdefault("application/json", {})
            schema = media.get("schema", {})
            if code == "422" or not schema or schema.get("$ref", "").rsplit("/", 1)[-1] in FASTAPI_VALIDATION:
                media["schema"] = self.invalid if code == "422" else self.error
            entry["content"] = {"application/json": media}  # the handlers answer only JSON

    # ----- settings ---------------------------------------------------------------------------------------
    def body_schemas(self) -> Iterator[dict[str, Any]]:
        """The request bodies' object schemas (components they refer to included, each once)."""
        seen: set[int] = set()
        stack = [
            media.get("schema", {})
            for _, _, op in self.operations()
            for media in op.get("requestBody", {}).get("content", {}).values()
        ]
        while stack:
            schema = stack.pop()
            if not isinstance(schema, dict) or id(schema) in seen:
                continue
            seen.add(id(schema))
            ref = schema.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                stack.append(self.schemas.get(ref.rsplit("/", 1)[-1], {}))
                continue
            yield schema
            stack.extend(schema.get("properties", {}).values())
            stack.extend(schema.get("anyOf", []))
            stack.extend(schema.get("oneOf", []))
            if isinstance(schema.get("items"), dict):
                stack.append(schema["items"])

    def settings_in_parameters(self, op: dict[str, Any]) -> None:
        for param in op.get("parameters", []):
            if param.get("name") in ("k", "limit"):
                _set_maximum(param.get("schema", {}), self.settings.max_k)

    def settings_in_body(self, schema: dict[str, Any]) -> None:
        properties = schema.get("properties", {})
        for name in ("k", "limit"):
            if name in properties:
                _set_maximum(properties[name], self.settings.max_k)
        # The store accepts the event types the training weights know (``Store.action_types``): the
        # ``event`` of POST /events and the ``action_type`` of an engagement.
        types = sorted(self.settings.event_weights)
        for name in ("event", "action_type"):
            if properties.get(name, {}).get("type") == "string":
                properties[name]["enum"] = types


def _set_maximum(schema: dict[str, Any], maximum: int) -> None:
    """``maximum`` on an integer schema, or on the integer branch of an optional one (``anyOf``), where the
    model gives none: ``max_k`` bounds the list endpoints at run time, while a bound in a model (the
    metrics' ``k``, the debug pages' ``limit``) is the one that route enforces."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "integer" and "maximum" not in branch:
            branch["maximum"] = maximum
