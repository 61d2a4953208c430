"""One log line and the request metrics for every HTTP request, as plain ASGI middleware.

Labels and log fields are bounded and content-free: the route template (never the raw
path), the model that answered, the status, the latency and the batch size. The model and
batch size are read from the answer's own headers (service.api.responses), which clients see too.

With tracing on (service.core.tracing) it also makes the request's server span, continuing the
caller's W3C `traceparent`, and puts the trace id in the log line and in the `X-Trace-ID` header.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.metrics import Metrics
from service.core.tracing import Tracing

log = logging.getLogger("service.access")

# Request ids need to be unique, not secret: a random prefix per process and a counter cost far
# less per request than asking the kernel for fresh random bytes each time.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, tracing: Tracing) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        answered: dict[bytes, bytes] = {}
        trace = self.tracing.start_request(scope["method"], scope["path"], scope["headers"])
        state["trace_id"] = trace.trace_id  # None when untraced; the payload log records it

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                answered.update((name, value) for name, value in headers if name in _SERVED_BY)
                headers.append((b"x-request-id", request_id.encode()))
                if trace.trace_id is not None:
                    headers.append((b"x-trace-id", trace.trace_id.encode()))
                if scope["app"].state.registry.draining:
                    # The server is about to close its connections: a keep-alive client that reused
                    # this one would have its next request reset, so tell it to open a new one.
                    headers.append((b"connection", b"close"))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            trace.record_exception(exc)
            raise
        finally:
            latency = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            model = answered.get(b"x-model", b"").decode("latin-1")
            self.metrics.count_request(route, model, status, latency)
            batch_size = answered.get(b"x-batch-size", b"-").decode("latin-1")
            traced = "" if trace.trace_id is None else f" trace_id={trace.trace_id}"
            log.info(
                "request_id=%s method=%s route=%s model=%s status=%d latency_ms=%.1f batch_size=%s%s",
                request_id, scope["method"], route, model or "-", status, latency * 1000, batch_size, traced,
            )
            trace.end(route, status, request_id, answered)


_SERVED_BY = (b"x-model", b"x-model-version", b"x-batch-size")


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is short and plain, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
