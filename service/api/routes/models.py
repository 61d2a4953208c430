"""GET /models and GET /models/{name}: what is loaded, every version on disk, and the cards."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.dependencies import RegistryDep
from service.api.errors import error_responses
from service.api.schemas import ModelInfo, ModelList, MonitoringInfo, VersionInfo
from service.core.registry import ModelRegistry
from service.core.versions import ModelVersions

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="List the models")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_describe(registry, model) for model in registry.models()])


@router.get("/models/{name}", response_model=ModelInfo, responses=error_responses(404), summary="Describe one model")
async def read_model(name: str, registry: RegistryDep) -> ModelInfo:
    return _describe(registry, registry.model(name))


def _describe(registry: ModelRegistry, model: ModelVersions) -> ModelInfo:
    latest = model.latest

    def version_info(version: int) -> VersionInfo:
        if version in model.loaded:
            loaded = model.loaded[version]
            monitor = loaded.monitor
            return VersionInfo(version=version, state="serving" if version == latest.version else "loaded",
                               card=loaded.card.to_json(),
                               monitoring=MonitoringInfo(**monitor.describe()) if monitor is not None else None)
        if version in model.failed:
            return VersionInfo(version=version, state="failed", error=model.failed[version])
        return VersionInfo(version=version, state="available")

    return ModelInfo(
        name=model.name,
        task=model.task,
        labels=latest.labels,
        serving_version=latest.version,
        default=registry.default_name(model.task) == model.name,
        versions=[version_info(v) for v in sorted(set(model.on_disk) | set(model.loaded) | set(model.failed))],
    )
