"""The page at `/`: a small static client of the public API, for trying the models in a browser.

Plain files in this folder (no build step, nothing fetched from elsewhere), served with a
Content-Security-Policy that allows only this origin's own script, style, images and API calls.
The policy is set on the page's responses only: `/docs` loads its assets from a CDN and keeps
working as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

PAGE_DIR = Path(__file__).resolve().parent
ASSET_PREFIX = "/page"

# blob: is for previews of the chosen images and for card plots, which are fetched with the
# API key (an <img src> could not send it) and shown from memory.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the code; revalidating (ETag) keeps a browser from running a stale script.
    "Cache-Control": "no-cache",
}
ASSETS = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def install_page(app: FastAPI) -> None:
    """Serve the page at `/` and its files under `/page/`; none of it is part of the API schema."""

    def page_file(name: str, media_type: str) -> FileResponse:
        return FileResponse(PAGE_DIR / name, media_type=media_type, headers=PAGE_HEADERS)

    @app.get("/", include_in_schema=False)
    async def read_page() -> FileResponse:
        return page_file("index.html", "text/html; charset=utf-8")

    # One route per file, from a fixed list: a request can only ever name one of these files.
    # (A closure, not default arguments: FastAPI would read those as query parameters.)
    def asset_endpoint(name: str, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
        async def read_asset() -> FileResponse:
            return page_file(name, media_type)

        return read_asset

    for name, media_type in ASSETS.items():
        app.add_api_route(f"{ASSET_PREFIX}/{name}", asset_endpoint(name, media_type), methods=["GET"],
                          include_in_schema=False)
