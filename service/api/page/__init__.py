"""The page at `/`: a small static client of the public API, for trying the models in a browser.

Plain files in this folder (no build step, nothing fetched from elsewhere), served with a
Content-Security-Policy that allows only this origin's own script, style, images and API calls.
The policy is the page's own: `/docs` has one of its own (service/api/docs/).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from service.api.static_files import StaticFile, add_file_routes, file_headers

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
PAGE_HEADERS = file_headers(CONTENT_SECURITY_POLICY)
ASSETS = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def install_page(app: FastAPI) -> None:
    """Serve the page at `/` and its files under `/page/`; none of it is part of the API schema."""
    files = {"/": StaticFile(PAGE_DIR / "index.html", "text/html; charset=utf-8")}
    files |= {f"{ASSET_PREFIX}/{name}": StaticFile(PAGE_DIR / name, media_type) for name, media_type in ASSETS.items()}
    add_file_routes(app, files, PAGE_HEADERS)
