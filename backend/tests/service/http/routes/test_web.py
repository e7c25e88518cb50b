"""The router that serves the page: index, static files, and nothing outside the static folder."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.service.http.routes import ROUTERS, web


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(web.router)
    return TestClient(app)


def test_router_is_registered():
    assert web.router in ROUTERS


def test_index_is_the_page(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    html = r.text
    for asset in ("/static/app.css", "/static/app.js", "/static/favicon.svg"):
        assert asset in html
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in html and "https://" not in html, "the page must not load anything from the internet"


@pytest.mark.parametrize(
    "name, content_type",
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_have_their_types(client, name, content_type):
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.content == (web.STATIC_DIR / name).read_bytes()
    assert "etag" in r.headers


def test_no_remote_urls_in_scripts_or_styles():
    for name in ("app.js", "app.css"):
        text = (web.STATIC_DIR / name).read_text()
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/missing.js",
        "/static/../routes/web.py",
        "/static/%2e%2e/routes/web.py",
        "/static/..%2Fapi.py",
        "/static/.hidden",
        "/static//etc/passwd",
        "/static/index.html%00.js",  # a NUL byte: os.stat raises on it (was a 500)
        "/static/app%0a.js",
    ],
)
def test_nothing_outside_static_is_served(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "detail" in r.json()


def test_static_file_rejects_types_it_does_not_serve(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "ok.js").write_text("1")
    monkeypatch.setattr(web, "STATIC_DIR", tmp_path)
    assert web.static_file("ok.js") == (tmp_path / "ok.js").resolve()
    with pytest.raises(Exception) as err:
        web.static_file("notes.txt")
    assert getattr(err.value, "status_code", None) == 404
