"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) served from files installed with the service, so both work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from Google): on a machine
without internet access, or behind a network that blocks CDNs, ``/docs`` was a blank page. The scripts,
style sheet and icon come from the ``fastapi-offline`` package (``requirements.txt``; Swagger UI 5, which
renders OpenAPI 3.1) and are served under ``/docs-assets``. Like the document itself, the pages and
their files need no key (``access``).

The pages' ``Content-Security-Policy`` keeps them on this service: ReDoc's side menu shows a badge
image from Redocly's CDN, which the browser then never requests (nothing leaves the machine, and
offline there is no failed request).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
#: Everything from this service; inline scripts and styles are how both UIs start and style themselves,
#: data: images are Swagger UI's icons, blob: workers ReDoc's search.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)
#: Swagger UI's validator badge sends the document's address to validator.swagger.io: never.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def assets_dir() -> Path:
    """The ``static`` folder of the installed ``fastapi-offline`` package."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to an app created with ``docs_url=None, redoc_url=None``."""
    directory = assets_dir()
    missing = [name for name in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON) if not (directory / name).is_file()]
    if missing:  # a broken install: say so at start-up rather than serve blank pages
        raise RuntimeError(f"fastapi-offline's assets are missing from {directory}: {', '.join(missing)}")
    app.mount(ASSETS_URL, StaticFiles(directory=directory), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def prefix(request: Request) -> str:
        # Behind a proxy that serves the app under a path (``--root-path``), every URL starts with it.
        return request.scope.get("root_path", "").rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        return confined(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
                swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
                swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                swagger_ui_parameters={**SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        return confined(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
                redoc_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                with_google_fonts=False,  # its fonts would come from Google
            )
        )


def confined(page: HTMLResponse) -> HTMLResponse:
    """``page`` with the policy that keeps it on this service (``CSP``)."""
    page.headers["Content-Security-Policy"] = CSP
    return page
