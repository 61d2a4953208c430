"""Typed dependencies the routes ask for: what the app was built with."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Annotated

from fastapi import Depends, Request

from service.core.registry import ModelRegistry
from service.settings import Settings


def _registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _decode_pool(request: Request) -> Executor:
    pool: Executor = request.app.state.decode_pool
    return pool


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
DecodePoolDep = Annotated[Executor, Depends(_decode_pool)]
