"""Builds the FastAPI app; models load in its lifespan, never at import."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from service.access_log import AccessLogMiddleware
from service.auth import require_api_key
from service.body_limit import BodyLimitMiddleware
from service.errors import error_responses, install_error_handlers
from service.metrics import Metrics
from service.page import install_page
from service.registry import ModelRegistry
from service.routes import card_files, health, images, inference_protocol, models, sentiment
from service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode") as pool:
            app.state.decode_pool = pool
            await app.state.registry.start()
            # The loaded models are hundreds of thousands of long-lived Python objects; moving them out
            # of the collector's reach keeps its periodic full passes short (they stall every request).
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                await app.state.registry.close()

    app = FastAPI(
        title="Model serving",
        summary="Image classification and sentiment analysis from TensorFlow SavedModels, with dynamic batching.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = ModelRegistry(settings, metrics)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware, metrics=metrics)  # outermost: sees every answer
    for router in (images.router, sentiment.build_router(settings), models.router, card_files.router):
        app.include_router(router, dependencies=[Depends(require_api_key)], responses=error_responses(401, 422))
    app.include_router(inference_protocol.router, dependencies=[Depends(require_api_key)],
                       responses=inference_protocol.error_responses(401, 422))
    for router in (health.router, inference_protocol.health_router):  # probes stay open
        app.include_router(router)
    if settings.page_enabled:  # the page at / (service/page/); it calls the API like any client
        install_page(app)
    return app
