"""Typed dependencies the routes ask for: what the app was built with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from service.core.registry import ModelRegistry
from service.settings import Settings

# The providers are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, a handoff per request that costs far more than reading app.state.


async def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


T = TypeVar("T")


@dataclass(frozen=True)
class Decoder:
    """Runs a decoding step (image bytes, v2 tensors) where it costs least.

    Small inputs are decoded right on the event loop: a 1 KB JPEG decodes in tens of
    microseconds, less than handing it to a thread and back (the GIL alone may take up to its
    5 ms switch interval to pass). Larger ones go to the decode pool, so the loop never stalls.
    """

    pool: Executor
    inline_max_bytes: int = 16 * 1024

    async def run(self, size: int, decode: Callable[..., T], *args: object) -> T:
        if size <= self.inline_max_bytes:
            return decode(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, decode, *args)


async def _decoder(request: Request) -> Decoder:
    decoder: Decoder = request.app.state.decoder  # built once, with the pool, in the app's lifespan
    return decoder


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DecoderDep = Annotated[Decoder, Depends(_decoder)]
