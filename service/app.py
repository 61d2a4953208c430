"""Builds the FastAPI app; models load in its lifespan, never at import."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from service.api.access_log import AccessLogMiddleware
from service.api.auth import API_KEY
from service.api.body_limit import BodyLimitMiddleware
from service.api.docs import install_docs
from service.api.errors import error_responses, install_error_handlers
from service.api.page import install_page
from service.api.routes import card_files, health, images, models, sentiment, v2
from service.core.inference import Inference
from service.core.loading import VersionLoader
from service.core.metrics import Metrics
from service.core.offload import Offloader
from service.core.registry import ModelRegistry
from service.core.tracing import Tracing, tracing_from_environment
from service.core.workers import quick_gil_handoff
from service.payloads.log import PayloadLog
from service.settings import Settings


def create_app(settings: Settings | None = None, *, tracer_provider: Any = None) -> FastAPI:
    """The app. Tracing follows the OTEL_* variables (service.core.tracing), unless a test passes
    an OpenTelemetry `tracer_provider` of its own."""
    settings = settings or Settings()
    metrics = Metrics()
    tracing: Tracing
    if tracer_provider is not None:
        from service.core.otel import OpenTelemetryTracing

        tracing = OpenTelemetryTracing(tracer_provider)
    else:
        tracing = tracing_from_environment()
    registry = ModelRegistry(settings, VersionLoader(settings, metrics, tracing), metrics)
    payload_log = PayloadLog.from_settings(settings, metrics)  # None when off

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:
            app.state.inference = Inference(registry, Offloader(pool), tracing)
            if payload_log is not None:
                payload_log.start()
            await registry.start()
            drain_on_stop_signals(registry.begin_draining)
            # The loaded models are hundreds of thousands of long-lived Python objects; moving them out
            # of the collector's reach keeps its periodic full passes short (they stall every request).
            gc.collect()
            gc.freeze()
            try:
                with quick_gil_handoff():
                    yield
            finally:
                await registry.close()
                if payload_log is not None:
                    payload_log.close()  # after the last answer: writes what is still queued
                tracing.shutdown()  # flushes the spans still waiting for export

    app = FastAPI(
        title="Model serving",
        summary="Image classification and sentiment analysis from TensorFlow SavedModels, with dynamic batching.",
        version="0.1.0",
        lifespan=lifespan,
        # The service traces and measures itself (service.core.tracing, service.core.metrics). FastAPI's
        # own OpenTelemetry would add a second trace of every request wherever a global provider exists
        # (Ray's, opentelemetry-instrument's), and checks for one on every request even where none does.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # FastAPI's own pages load their assets from CDNs; /docs is served by install_docs instead, and
        # /redoc not at all (service/api/docs/). No OAuth2 scheme, so no OAuth2 redirect page either.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = registry
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware, metrics=metrics, tracing=tracing)  # outermost: sees every answer

    # With keys off the model routes ask for none, and the schema says so: declaring a security
    # scheme the server does not enforce would tell clients something untrue.
    keyed = API_KEY if settings.api_key_list else []
    status_401 = (401,) if settings.api_key_list else ()
    shared = error_responses(*status_401, 422)
    # The inference routes first: they are the hot path, and LeanRoutes belong to the app itself.
    images.add_route(app, keyed, shared, payload_log)
    sentiment.add_route(app, settings, keyed, shared, payload_log)
    for router in (models.router, card_files.router):
        app.include_router(router, responses=shared, dependencies=keyed)
    app.include_router(v2.router, responses=v2.error_responses(*status_401, 422), dependencies=keyed)
    for router in (health.router, v2.health_router):  # probes stay open
        app.include_router(router)
    install_docs(app)  # Swagger UI at /docs, from the service's own files
    if settings.page_enabled:  # the page at / (service/api/page/); it calls the API like any client
        install_page(app)
    return app


def drain_on_stop_signals(begin_draining: Callable[[], None]) -> None:
    """Chain `begin_draining` before the server's own SIGTERM and SIGINT handlers.

    The server (uvicorn, in this process or in each worker process) stops accepting and
    waits for what is in flight; draining also turns readiness to 503 and refuses new
    requests on open connections at once. Signals can only be handled in the main thread,
    so an app run by a test client in another thread keeps the handlers it has.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for stop in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(stop)

        def drain_then(signum: int, frame: object, previous: object = previous) -> None:
            begin_draining()
            if callable(previous):
                previous(signum, frame)

        signal.signal(stop, drain_then)
