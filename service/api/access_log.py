"""One log line and the request metrics for every HTTP request, as plain ASGI middleware.

Labels and log fields are bounded and content-free: the route template (never the raw
path), the model that answered, the status, the latency and the batch size. The model and
batch size are read from the answer's own headers (see `served_by`), which clients see too.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from fastapi import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.metrics import Metrics

log = logging.getLogger("service.access")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        answered: dict[bytes, bytes] = {}

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                answered.update((name, value) for name, value in headers if name in _SERVED_BY)
                headers.append((b"x-request-id", request_id.encode()))
                if scope["app"].state.registry.draining:
                    # The server is about to close its connections: a keep-alive client that reused
                    # this one would have its next request reset, so tell it to open a new one.
                    headers.append((b"connection", b"close"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            latency = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            model = answered.get(b"x-model", b"").decode("latin-1")
            self.metrics.requests.labels(route, model, str(status)).inc()
            self.metrics.request_latency.labels(route, model).observe(latency)
            log.info(
                "request_id=%s method=%s route=%s model=%s status=%d latency_ms=%.1f batch_size=%s",
                request_id, scope["method"], route, model or "-", status, latency * 1000,
                answered.get(b"x-batch-size", b"-").decode("latin-1"),
            )


_SERVED_BY = (b"x-model", b"x-model-version", b"x-batch-size")


def served_by(response: Response, model: str, version: int, batch_size: int) -> None:
    """Name the model version that answered and the largest batch it ran in, for the client and the log."""
    response.headers["X-Model"] = model
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Batch-Size"] = str(batch_size)


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is short and plain, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex
