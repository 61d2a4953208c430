"""GET /models, GET /models/{name} and its rollout: what is loaded, every version on disk, the cards, the rollout."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.dependencies import RegistryDep
from service.api.errors import error_responses
from service.api.schemas import ModelInfo, ModelList, MonitoringInfo, RolloutInfo, RuntimeInfo, VersionInfo
from service.core.registry import ModelRegistry
from service.core.versions import ModelVersions

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="List the models")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_describe(registry, model) for model in registry.models()])


@router.get("/models/{name}", response_model=ModelInfo, responses=error_responses(404), summary="Describe one model")
async def read_model(name: str, registry: RegistryDep) -> ModelInfo:
    return _describe(registry, registry.model(name))


@router.get("/models/{name}/rollout", response_model=RolloutInfo, responses=error_responses(404),
            summary="A model's rollout: its policy, gates and live figures per version")
async def read_rollout(name: str, registry: RegistryDep) -> RolloutInfo:
    return RolloutInfo(**registry.rollouts.describe(name, registry.model(name)))


def _describe(registry: ModelRegistry, model: ModelVersions) -> ModelInfo:
    serving = registry.serving(model)

    def version_info(version: int) -> VersionInfo:
        if version in model.loaded:
            loaded = model.loaded[version]
            monitor = loaded.monitor
            return VersionInfo(version=version, state="serving" if version == serving.version else "loaded",
                               card=loaded.card.to_json(),
                               monitoring=MonitoringInfo(**monitor.describe()) if monitor is not None else None,
                               runtime=RuntimeInfo(**loaded.runtime.to_json()),
                               explains=loaded.handler.explain_refusal() is None)
        if version in model.failed:
            return VersionInfo(version=version, state="failed", error=model.failed[version])
        return VersionInfo(version=version, state="available")

    return ModelInfo(
        name=model.name,
        task=model.task,
        labels=serving.labels,
        serving_version=serving.version,
        default=registry.default_name(model.task) == model.name,
        versions=[version_info(v) for v in sorted(set(model.on_disk) | set(model.loaded) | set(model.failed))],
    )
