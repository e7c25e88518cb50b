"""The web page: ``/`` serves the single-page app, ``/static/...`` its CSS and JavaScript.

The page is plain files shipped in the package (no build step, no CDN) and calls the same REST API
as any other client, so it works offline and with no second server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

#: Only these file types are served; anything else under static/ is not part of the page.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# Revalidate on every load (FileResponse sends ETag/Last-Modified), so a redeploy is never stale.
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(tags=["web"])


def static_file(relative: str) -> Path:
    """The file under ``STATIC_DIR`` for a request path, or 404 (no traversal, no hidden or odd types)."""
    parts = Path(relative).parts
    # A NUL or another control character is never in a file name of ours (and os.stat raises on NUL).
    if any(ord(ch) < 32 for ch in relative):
        raise HTTPException(status_code=404, detail="no such file: the path has a control character")
    if not relative or any(p in ("..", "") or p.startswith(".") for p in parts) or Path(relative).is_absolute():
        raise HTTPException(status_code=404, detail=f"no such file: /static/{relative}")
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file() or path.suffix not in CONTENT_TYPES:
        raise HTTPException(status_code=404, detail=f"no such file: /static/{relative}")
    return path


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The page itself; every view is a hash route inside it (``/#/popular``, ``/#/item/42``, ...)."""
    return FileResponse(STATIC_DIR / "index.html", media_type=CONTENT_TYPES[".html"], headers=_HEADERS)


@router.get("/static/{relative:path}", include_in_schema=False)
async def static(relative: str) -> FileResponse:
    path = static_file(relative)
    return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=_HEADERS)
