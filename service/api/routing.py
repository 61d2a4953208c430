"""Who a request comes from, for a canary's sticky split (service.rollout): the same caller, the same version.

The key is the `X-Routing-Key` header, else the API key the request carries; without either,
each request falls on a side at random. The key only feeds a hash: it is never logged or kept.
"""

from __future__ import annotations

from fastapi import Request

ROUTING_KEY_HEADER = "x-routing-key"


def routing_key(request: Request) -> str | None:
    headers = request.headers
    key = headers.get(ROUTING_KEY_HEADER) or headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
