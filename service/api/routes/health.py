"""Probes: liveness, readiness, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.dependencies import RegistryDep
from service.api.errors import error_responses
from service.api.schemas import Status
from service.core.errors import NotReady

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Status, summary="The process is up")
async def read_health() -> Status:
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses=error_responses(503),
            summary="Every model is loaded and has answered a warm-up batch (in every worker process)")
async def read_readiness(registry: RegistryDep) -> Status:
    if not registry.ready:
        raise NotReady("models are still loading or the service is shutting down")
    return Status(status="ready")


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}})
async def read_metrics(request: Request) -> Response:
    body, media_type = request.app.state.metrics.exposition()
    return Response(body, media_type=media_type)
