"""Files that come with the service, served from a fixed table: the page at `/` and the API documentation at `/docs`.

One route per file, so a request can only ever name a file of the table, never choose a path; none of
these routes is part of the API schema. Each caller passes the headers of its files, among them its own
Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse


@dataclass(frozen=True)
class StaticFile:
    path: Path
    media_type: str


def file_headers(content_security_policy: str) -> dict[str, str]:
    """The headers of every static file: its policy, and what keeps a browser from guessing or leaking."""
    return {
        "Content-Security-Policy": content_security_policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The files change with the code (or a dependency); revalidating keeps a browser from running a stale script.
        "Cache-Control": "no-cache",
    }


def add_file_routes(app: FastAPI, files: Mapping[str, StaticFile], headers: Mapping[str, str]) -> None:
    """A GET route at each URL of `files`, answering with that file and `headers`.

    A file missing when the app is built is an error then, rather than a blank page in a browser later.
    """
    missing = [f"{url} -> {file.path}" for url, file in files.items() if not file.path.is_file()]
    if missing:
        raise RuntimeError(f"static files not found: {', '.join(missing)}; reinstall the service "
                           "(`make deps` or `make serve` install it from uv.lock)")

    # (A closure, not default arguments: FastAPI would read those as query parameters.)
    def endpoint(file: StaticFile) -> Callable[[], Awaitable[FileResponse]]:
        async def read_static_file() -> FileResponse:
            return FileResponse(file.path, media_type=file.media_type, headers=dict(headers))

        return read_static_file

    for url, file in files.items():
        app.add_api_route(url, endpoint(file), methods=["GET"], include_in_schema=False)
