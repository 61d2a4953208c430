"""Typed dependencies the routes ask for: what the app was built with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.core.inference import Inference
from service.core.registry import ModelRegistry

# The providers are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, a handoff per request that costs far more than reading app.state.


async def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def _inference(request: Request) -> Inference:
    inference: Inference = request.app.state.inference
    return inference


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
InferenceDep = Annotated[Inference, Depends(_inference)]
