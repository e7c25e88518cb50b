"""What every write must pass before a route sees it: a JSON body, a same-site or allowed origin, a size limit.

``WriteGuard``: a POST/PUT/PATCH/DELETE whose body is not JSON (``/events`` also takes JSON Lines) is a
415, and one a browser sends from another site (an ``Origin`` that is neither this service nor in
``RECOMMENDER_CORS_ORIGINS``) is a 403: a page elsewhere cannot post events or reload the model in a
visitor's name (forms and ``text/plain`` are what a cross-site page can send without asking).
``RECOMMENDER_CORS_ORIGINS`` also turns on CORS (Starlette's middleware) for those origins.

Body limits, ``BodyLimit``, enforced while the body is read (chunked bodies included).

A ``Content-Length`` above the route's limit is a 413 before anything is read; a body without one (or
that lies about it) is counted as it arrives and stopped at the limit with the same 413, so four
concurrent 200 MB posts never sit in memory. ``/events`` takes batches (``RECOMMENDER_MAX_EVENTS_BODY_BYTES``);
every other route ``RECOMMENDER_MAX_BODY_BYTES``. Requests without a body (GET, HEAD, ...) pass through.
A body that stalls (no chunk for ``RECOMMENDER_BODY_TIMEOUT_SECONDS``) is a 408 and the connection is
closed, so a client trickling its body cannot hold a worker's connection for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException

from app.service.http.access import AccessGuard
from app.service.http.responses import send_error

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
_GUARDED_HEADERS = frozenset({b"origin", b"host", b"content-type", b"content-length", b"transfer-encoding"})


def install(app: Any, settings: Any) -> None:
    """The guards of ``settings`` on ``app`` (``create_app`` and the tests' minimal apps); the last added
    runs first: CORS answers preflights, then the keys (``access``), the origin and type checks, and the
    size limit."""
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        limits={"/events": settings.max_events_body_bytes},
        idle_timeout=settings.body_timeout_seconds,
    )
    origins = settings.cors_origin_list()
    app.add_middleware(WriteGuard, allowed_origins=origins, types={"/events": JSON_TYPES + NDJSON_TYPES})
    app.add_middleware(AccessGuard, api_key=settings.api_key, admin_key=settings.admin_key)
    if origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Idempotency-Key", "X-API-Key"],
            max_age=600,
        )


class WriteGuard:
    """Pure ASGI middleware: writes must be JSON (``types`` per path, JSON elsewhere) and same-site or
    from ``allowed_origins``."""

    def __init__(self, app: Any, allowed_origins: list[str], types: Mapping[str, tuple[str, ...]] | None = None):
        self.app = app
        self.allowed = frozenset(o.rstrip("/") for o in allowed_origins)
        self.types = dict(types or {})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in _GUARDED_HEADERS}
        origin = headers.get(b"origin")
        if origin is not None and origin != "null" and origin.rstrip("/") not in self.allowed:
            if origin.split("://", 1)[-1].rstrip("/") != headers.get(b"host", ""):  # not this service's page
                await send_error(
                    send,
                    HTTPException(
                        403,
                        detail=(
                            f"cross-site request from origin {origin!r} refused: serve the page from this service, "
                            "or add the origin to RECOMMENDER_CORS_ORIGINS"
                        ),
                    ),
                )
                return
        if origin == "null":  # a sandboxed page or a file: never this service's page
            await send_error(send, HTTPException(403, detail="requests from origin 'null' are refused"))
            return
        ctype = headers.get(b"content-type")
        has_body = headers.get(b"content-length", "0") != "0" or b"transfer-encoding" in headers
        if ctype is not None or has_body:
            media = (ctype or "").split(";", 1)[0].strip().lower()
            accepted = self.types.get(scope["path"], JSON_TYPES)
            if media not in accepted:
                await send_error(
                    send,
                    HTTPException(
                        415,
                        detail=(
                            f"Content-Type {media or 'missing'!r} is not accepted here: send " + " or ".join(accepted)
                        ),
                    ),
                )
                return
        await self.app(scope, receive, send)


def too_large(limit: int, size: int | None = None) -> HTTPException:
    got = f"a body of {size} bytes" if size is not None else "a larger body"
    return HTTPException(status_code=413, detail=f"{got}; the maximum for this endpoint is {limit} bytes")


def stalled(seconds: float) -> HTTPException:
    return HTTPException(
        status_code=408,
        detail=f"the request body stalled: no data for {seconds:g} seconds; send the whole body promptly",
        headers={"Connection": "close"},
    )


class BodyLimit:
    """Pure ASGI middleware: ``limits`` maps a path to its limit, others get ``default``; ``idle_timeout``
    (seconds, 0: none) is the longest wait for the body's next chunk."""

    def __init__(self, app: Any, default: int, limits: Mapping[str, int] | None = None, idle_timeout: float = 0):
        self.app = app
        self.default = int(default)
        self.limits = dict(limits or {})
        self.idle_timeout = float(idle_timeout) or None

    async def _receive_within(self, receive: Any) -> dict:
        """``receive()``, or the 408 after ``idle_timeout`` s. A timer that cancels the task, not
        ``asyncio.timeout``: that cost 8% of a ``POST /recommend``'s throughput, this a call_later."""
        task, expired = asyncio.current_task(), False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.idle_timeout, expire)
        try:
            return await receive()
        except asyncio.CancelledError:
            if not expired:
                raise  # cancelled by someone else (shutdown): not ours to turn into an answer
            task.uncancel()
            raise stalled(self.idle_timeout) from None
        finally:
            timer.cancel()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_error(send, too_large(limit, int(value)))
                return
        received, complete = 0, False

        async def limited() -> dict:
            nonlocal received, complete
            if complete:  # after the body only a disconnect can come, and waiting for it is no stall
                return await receive()
            message = await receive() if self.idle_timeout is None else await self._receive_within(receive)
            complete = not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # raised inside the route's body read: a 413 from the error handlers
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)
