"""GET /models and GET /models/{name}: what is loaded, every version on disk, and the cards."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.dependencies import RegistryDep
from service.api.errors import error_responses
from service.api.schemas import ModelInfo, ModelList, MonitoringInfo, VersionInfo
from service.core.registry import ModelEntry, ModelRegistry

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="List the models")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_describe(registry, entry) for entry in registry.models()])


@router.get("/models/{name}", response_model=ModelInfo, responses=error_responses(404), summary="Describe one model")
async def read_model(name: str, registry: RegistryDep) -> ModelInfo:
    return _describe(registry, registry.entry(name))


def _describe(registry: ModelRegistry, entry: ModelEntry) -> ModelInfo:
    latest = entry.latest

    def version_info(version: int) -> VersionInfo:
        if version in entry.loaded:
            served = entry.loaded[version]
            monitor = served.monitor
            return VersionInfo(version=version, state="serving" if version == latest.version else "loaded",
                               card=served.card.to_json(),
                               monitoring=MonitoringInfo(**monitor.describe()) if monitor is not None else None)
        if version in entry.failed:
            return VersionInfo(version=version, state="failed", error=entry.failed[version])
        return VersionInfo(version=version, state="available")

    return ModelInfo(
        name=entry.name,
        task=entry.task,
        labels=latest.labels,
        serving_version=latest.version,
        default=registry.default_name(entry.task) == entry.name,
        versions=[version_info(v) for v in sorted(set(entry.on_disk) | set(entry.loaded) | set(entry.failed))],
    )
