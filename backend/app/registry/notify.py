"""Tell a running service to load the new production version (POST /admin/reload)."""

from __future__ import annotations

from typing import Any

import httpx


def reload_service(service_url: str, timeout: float = 30.0, admin_key: str | None = None) -> dict[str, Any]:
    """POST ``<service_url>/admin/reload``; returns {"ok", "status", "body" | "error"} and never raises.

    A service that is down is reported, not fatal: it loads the production version when it starts.
    ``admin_key`` (default: ``RECOMMENDER_ADMIN_KEY`` of this process's settings) is sent in ``X-API-Key``.
    """
    url = service_url.rstrip("/") + "/admin/reload"
    if admin_key is None:
        from app.config import get_settings

        admin_key = get_settings().admin_key
    headers = {"X-API-Key": admin_key} if admin_key else {}
    try:
        response = httpx.post(url, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        return {"ok": False, "url": url, "status": None, "error": f"{type(exc).__name__}: {exc}"}
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    return {"ok": response.is_success, "url": url, "status": response.status_code, "body": body}
