"""Who may call what: API keys in the ``X-API-Key`` header (or ``Authorization: Bearer``).

- Admin routes (``/admin/*``, ``/debug/*``, the registry's ``/models``, ``/metrics`` and ``/metrics/*``)
  need ``RECOMMENDER_ADMIN_KEY``; while it is not set they answer loopback clients only (an operator on
  the machine, a local Prometheus), and start-up logs a warning.
- Client routes (recommendations, items, events, engagements) need ``RECOMMENDER_API_KEY`` when it is
  set (the admin key works too); without it they are open, as a page on a private network expects.
- ``/health``, ``/ready``, the web page and the API documents are always open.

Keys are compared in constant time. A missing key is a 401 and a wrong one a 403, each saying which
key the route needs.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Literal

from fastapi import HTTPException

from app.service.http.responses import send_error

ADMIN_PREFIXES = ("/admin/", "/debug/", "/metrics", "/models")
CLIENT_PREFIXES = ("/recommendations", "/recommend", "/similar", "/popular", "/items", "/events")

Audience = Literal["admin", "client", "open"]


def audience(path: str) -> Audience:
    """Which key a path needs: the guard and the OpenAPI document (``openapi``) both ask this."""
    if path.startswith(ADMIN_PREFIXES):
        return "admin"
    if path.startswith(CLIENT_PREFIXES):
        return "client"
    return "open"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
    return None


def _matches(key: str, *expected: str) -> bool:
    return any(e and hmac.compare_digest(key.encode(), e.encode()) for e in expected)


class AccessGuard:
    """Pure ASGI middleware applying the rules of the module docstring."""

    def __init__(self, app: Any, api_key: str = "", admin_key: str = ""):
        self.app = app
        self.api_key = api_key
        self.admin_key = admin_key

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = self.check(scope)
            if problem is not None:
                await send_error(send, problem)
                return
        await self.app(scope, receive, send)

    def check(self, scope: dict) -> HTTPException | None:
        who = audience(scope["path"])
        if who == "admin":
            if not self.admin_key:
                client = scope.get("client")
                if is_loopback(client[0] if client else None):
                    return None
                return HTTPException(
                    403,
                    detail="admin, debug, registry and metrics routes answer only clients on this machine "
                    "while RECOMMENDER_ADMIN_KEY is not set: set it and send it in X-API-Key",
                )
            return self._need(scope, "RECOMMENDER_ADMIN_KEY", self.admin_key)
        if self.api_key and who == "client":
            return self._need(scope, "RECOMMENDER_API_KEY", self.api_key, self.admin_key)
        return None

    @staticmethod
    def _need(scope: dict, name: str, *keys: str) -> HTTPException | None:
        key = presented_key(scope["headers"])
        if key is None:
            return HTTPException(401, detail=f"this route needs the key set in {name}: send it in X-API-Key")
        if not _matches(key, *keys):
            return HTTPException(403, detail=f"the X-API-Key sent is not the key set in {name}")
        return None
