"""The interactive API documentation at `/docs`: Swagger UI, from files that come with the service.

FastAPI's own `/docs` loads Swagger UI's script and stylesheet from a CDN and starts it with an inline
script: offline it is a blank page, and no strict Content-Security-Policy could allow it. Here Swagger
UI's files come from the fastapi-offline package (a pinned dependency whose wheel carries them; only
its files are used, not its code), the page and the script that starts Swagger UI are files in this
folder, and all of them are served with a policy that allows this origin only.

FastAPI's `/redoc` is not served: it would show the same schema without "Try it out", and its
script would need a looser policy of its own (docs/api.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI

from service.api.static_files import StaticFile, add_file_routes, file_headers

DOCS_DIR = Path(__file__).resolve().parent
DOCS_URL = "/docs"
# The page and its start-up script (this folder), then Swagger UI's own files as fastapi-offline names them,
# all served under /docs/ as the page's are under /page/.
OWN_FILES = {"swagger-ui-init.js": "text/javascript; charset=utf-8"}
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    # swagger-ui.css draws its icons (the arrows, locks and copy button) as data: images.
    "img-src 'self' data:",
    # The schema, and the calls "Try it out" makes, go to this origin.
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
DOCS_HEADERS = file_headers(CONTENT_SECURITY_POLICY)


def swagger_ui_dir() -> Path:
    """Where the installed fastapi-offline keeps Swagger UI's files (found without importing its code)."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package is not installed; /docs serves Swagger UI from it "
                           "(`make deps` or `make serve` install it from uv.lock)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at `/docs` and its files under `/docs/`; the app must be built with FastAPI's own
    docs off (`docs_url=None`, `redoc_url=None`)."""
    static = swagger_ui_dir()
    files = {DOCS_URL: StaticFile(DOCS_DIR / "index.html", "text/html; charset=utf-8")}
    files |= {f"{DOCS_URL}/{name}": StaticFile(DOCS_DIR / name, media_type) for name, media_type in OWN_FILES.items()}
    files |= {f"{DOCS_URL}/{name}": StaticFile(static / name, media_type)
              for name, media_type in SWAGGER_UI_FILES.items()}
    add_file_routes(app, files, DOCS_HEADERS)
