"""Request body limits for every route, enforced while the body is read (chunked bodies included).

A ``Content-Length`` above the route's limit is a 413 before anything is read; a body without one (or
that lies about it) is counted as it arrives and stopped at the limit with the same 413, so four
concurrent 200 MB posts never sit in memory. ``/events`` takes batches (``RECOMMENDER_MAX_EVENTS_BODY_BYTES``);
every other route ``RECOMMENDER_MAX_BODY_BYTES``. Requests without a body (GET, HEAD, ...) pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


def install(app: Any, settings: Any) -> None:
    """The limits of ``settings`` on ``app`` (``create_app`` and the tests' minimal apps)."""
    app.add_middleware(BodyLimit, default=settings.max_body_bytes, limits={"/events": settings.max_events_body_bytes})


def too_large(limit: int, size: int | None = None) -> HTTPException:
    got = f"a body of {size} bytes" if size is not None else "a larger body"
    return HTTPException(status_code=413, detail=f"{got}; the maximum for this endpoint is {limit} bytes")


class BodyLimit:
    """Pure ASGI middleware: ``limits`` maps a path to its limit, others get ``default``."""

    def __init__(self, app: Any, default: int, limits: Mapping[str, int] | None = None):
        self.app = app
        self.default = int(default)
        self.limits = dict(limits or {})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send, too_large(limit, int(value)))
                return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # raised inside the route's body read: a 413 from the error handlers
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)


async def _reject(send: Any, exc: HTTPException) -> None:
    import orjson

    body = orjson.dumps({"detail": exc.detail})
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
