"""The error handlers that keep every failure a clear JSON answer, and the errors handlers raise.

Errors share one shape: ``{"detail": <message or list of field errors>, ...}``; validation errors keep
FastAPI's list (``loc``, ``msg``, ``type``) and add ``field`` and ``reason`` so clients can show them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.service.http.fastpath import ORJSON_OPTIONS, OrjsonResponse

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a message for the client (raised anywhere below a handler)."""

    def __init__(self, status_code: int, detail: Any, **extra: Any):
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.status_code = status_code
        self.detail = detail
        self.extra = extra


def field_error(
    location: str, field: str | Sequence[str | int], reason: str, error_type: str = "value_error"
) -> RequestValidationError:
    """A 422 for one field, in the same shape as Pydantic's, for checks that need runtime state (max k, genres)."""
    loc = (location, *(field if isinstance(field, (list, tuple)) else (field,)))
    return RequestValidationError([{"type": error_type, "loc": loc, "msg": reason, "input": None}])


def _jsonable(value: Any) -> Any:
    """Error inputs/contexts can hold exceptions or bytes; keep what orjson can write, stringify the rest."""
    try:
        orjson.dumps(value, option=ORJSON_OPTIONS)
        return value
    except TypeError:
        return str(value)


def _describe(err: dict[str, Any]) -> dict[str, Any]:
    loc = [str(p) if not isinstance(p, int) else p for p in err.get("loc", ())]
    location = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else ""
    field_parts = loc[1:] if location else loc
    field = ".".join(str(p) for p in field_parts) or location or "request"
    msg = str(err.get("msg", "invalid value"))
    out = {
        "loc": loc,
        "field": field,
        "location": location,
        "reason": msg,
        "msg": msg,
        "type": err.get("type", "value_error"),
    }
    if "input" in err and err["input"] is not None:
        text = _jsonable(err["input"])
        if isinstance(text, str) and len(text) > 200:
            text = text[:200] + "..."
        out["input"] = text
    return out


async def validation_error_handler(request: Request, exc: RequestValidationError) -> Response:
    errors = [_describe(e) for e in exc.errors()]
    message = "; ".join(f"{e['field']}: {e['reason']}" for e in errors) or "invalid request"
    return OrjsonResponse({"detail": errors, "message": message}, status_code=422)


async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
    headers = getattr(exc, "headers", None)
    return OrjsonResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def api_error_handler(request: Request, exc: ApiError) -> Response:
    return OrjsonResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    """Last resort: log the trace server-side, give the client an id to quote, never the trace."""
    error_id = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s on %s %s", error_id, request.method, request.url.path)
    return OrjsonResponse(
        {"detail": "internal error; the server log has the details", "error_id": error_id},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)


async def send_error(send: Any, exc: StarletteHTTPException) -> None:
    """An HTTP error answered from ASGI middleware (before any route), in the shape the handlers use."""
    body = orjson.dumps({"detail": exc.detail})
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
