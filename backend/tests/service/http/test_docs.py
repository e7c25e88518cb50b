"""``/docs`` and ``/redoc`` work offline: every script, style sheet and icon they load is served by the service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.service.http.app import create_app
from tests.service.conftest import make_settings

REMOTE = ("203.0.113.7", 40000)
#: What each asset must be served as (the browser refuses a script or a style sheet of another type).
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


def referenced(html: str) -> list[str]:
    """The URLs a page loads: script sources, style sheets and icons, and the document Swagger UI fetches."""
    urls = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    urls += re.findall(r'<link[^>]*\bhref="([^"]+)"', html)
    urls += re.findall(r"url: '([^']+)'", html)  # Swagger UI's document
    urls += re.findall(r'spec-url="([^"]+)"', html)  # ReDoc's document
    return urls


@pytest.fixture(scope="module")
def remote(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A client on another machine, of a service with both keys set: the pages need neither."""
    settings = make_settings(model_dir, tmp_path_factory.mktemp("docs"), api_key="client", admin_key="admin")
    with TestClient(create_app(settings), client=REMOTE) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_load_everything_from_the_service(remote: TestClient, page: str) -> None:
    r = remote.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = referenced(r.text)
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls  # no CDN, no web fonts
    assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls)
    for url in urls:
        asset = remote.get(url)
        assert asset.status_code == 200, url
        if url == "/openapi.json":
            assert asset.json()["paths"]
            continue
        wanted = CONTENT_TYPES[Path(url).suffix]
        assert asset.headers["content-type"].split(";")[0] in wanted, (url, asset.headers["content-type"])
        assert len(asset.content) > 1000, url


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_may_load_nothing_from_elsewhere(remote: TestClient, page: str) -> None:
    """ReDoc's side menu shows a badge from Redocly's CDN: the policy keeps the browser from asking for it."""
    policy = remote.get(page).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "http" not in policy


def test_swagger_ui_never_calls_the_online_validator(remote: TestClient) -> None:
    assert '"validatorUrl": null' in remote.get("/docs").text


def test_swagger_ui_is_version_5_which_renders_openapi_3_1(remote: TestClient) -> None:
    assert remote.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = remote.get("/docs-assets/swagger-ui-bundle.js").text
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle)


def test_behind_a_path_prefix_the_pages_use_it(model_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(model_dir, tmp_path)), root_path="/api") as c:
        urls = referenced(c.get("/docs").text)
    assert urls and all(u.startswith("/api/") for u in urls), urls


def test_only_the_documentation_assets_are_served(remote: TestClient) -> None:
    assert remote.get("/docs-assets/../app.py").status_code == 404
    assert remote.get("/docs-assets/").status_code == 404  # no directory listing
