"""Tell a running service to load the new production version (POST /admin/reload)."""

from __future__ import annotations

from typing import Any

import httpx


def reload_service(service_url: str, timeout: float = 30.0) -> dict[str, Any]:
    """POST ``<service_url>/admin/reload``; returns {"ok", "status", "body" | "error"} and never raises.

    A service that is down is reported, not fatal: it loads the production version when it starts.
    """
    url = service_url.rstrip("/") + "/admin/reload"
    try:
        response = httpx.post(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"ok": False, "url": url, "status": None, "error": f"{type(exc).__name__}: {exc}"}
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:500]
    return {"ok": response.is_success, "url": url, "status": response.status_code, "body": body}
