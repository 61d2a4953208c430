"""One log line and the request metrics for every HTTP request, as plain ASGI middleware.

Labels and log fields are bounded and content-free: the route template (never the raw
path), the model the route resolved, the status, the latency and the batch size.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

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
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            latency = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            model = state.get("model", "")
            self.metrics.requests.labels(route, model, str(status)).inc()
            self.metrics.request_latency.labels(route, model).observe(latency)
            log.info(
                "request_id=%s method=%s route=%s model=%s status=%d latency_ms=%.1f batch_size=%s",
                request_id, scope["method"], route, model or "-", status, latency * 1000,
                state.get("batch_size", "-"),
            )


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is short and plain, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex
