"""``/docs`` and ``/redoc`` in headless Chromium with every request off this machine blocked: both render the API."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Under half a second on an idle machine; the UIs parse 1-1.5 MB of script, which a busy one slows a lot.
RENDER_MS = 30_000


def offline(page) -> list[str]:
    """Abort every request that would leave the machine; the returned list fills with their URLs."""
    blocked: list[str] = []

    def route(r) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    return blocked


def test_swagger_ui_renders_every_operation_offline(page, server, api) -> None:
    operations = sum(len(item) for item in api.get("/openapi.json").json()["paths"].values())
    blocked = offline(page)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".opblock", timeout=RENDER_MS)
    assert page.locator(".opblock").count() == operations
    assert page.locator(".opblock-summary-path", has_text="/recommendations/{user_id}").count() == 1
    assert blocked == []


def refused_badge(text: str) -> bool:
    """The browser's report that the page's policy refused ReDoc's badge from Redocly's CDN."""
    return "redoc.ly" in text and "Content Security Policy" in text


def test_redoc_renders_offline(page, server, console) -> None:
    blocked = offline(page)
    # ReDoc's side menu always shows the badge; the policy refuses it before any request is made
    with page.expect_console_message(lambda m: refused_badge(m.text), timeout=RENDER_MS):
        page.goto(f"{server.url}/redoc")
        page.locator("h2", has_text="Top-k items for a user").first.wait_for(timeout=RENDER_MS)
    assert blocked == []  # the badge was requested from the CDN before the pages had a policy
    console.errors[:] = [e for e in console.errors if not refused_badge(e)]  # the one error expected
