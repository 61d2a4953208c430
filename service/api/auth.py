"""Optional API keys: `Authorization: Bearer <key>` or `X-API-Key: <key>` (both, if sent, must be valid).

Off when SERVICE_API_KEYS is empty (local use). Probes (health, readiness, metrics) never
ask for a key; service/app.py decides which routes do. Keys are compared in constant time and
never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from service.core.errors import Unauthorized

_ACCEPTED = "Authorization: Bearer <key>, or X-API-Key: <key>"
_bearer = HTTPBearer(auto_error=False, description="An API key, when the service is set up with some.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as an alternative header.")


async def require_api_key(request: Request) -> None:
    keys: list[str] = request.app.state.settings.api_key_list
    if not keys:
        return
    bearer, header_key = await _bearer(request), await _header(request)
    presented = [given for given in (header_key, bearer.credentials if bearer else None) if given is not None]
    if not presented:
        raise Unauthorized("an API key is required", accepted=_ACCEPTED)
    # Every key presented must be valid; each is compared with every key, without stopping at
    # a match, so timing tells nothing.
    for given in presented:
        if not any([hmac.compare_digest(given.encode(), key.encode()) for key in keys]):
            raise Unauthorized("the API key is not valid", accepted=_ACCEPTED)


# What a route that needs a key declares. The check takes only the request (the inference routes'
# LeanRoute runs it as it is); the two schemes are listed beside it so that the OpenAPI schema
# shows them (each only reads its header).
API_KEY = [Depends(_bearer), Depends(_header), Depends(require_api_key)]
