"""Optional API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>`.

Off when SERVICE_API_KEYS is empty (local use). Probes (health, readiness, metrics) never
ask for a key; main.py decides which routers do. Keys are compared in constant time and
never logged.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An API key, when the service is set up with some.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as an alternative header.")


async def require_api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> None:
    keys: list[str] = request.app.state.settings.api_key_list
    if not keys:
        return
    given = header_key or (bearer.credentials if bearer else None)
    if given is None:
        raise Unauthorized("an API key is required", accepted="Authorization: Bearer <key>, or X-API-Key: <key>")
    # Compare against every key, without stopping at a match, so timing tells nothing.
    matches = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]
    if not any(matches):
        raise Unauthorized("the API key is not valid", accepted="Authorization: Bearer <key>, or X-API-Key: <key>")
