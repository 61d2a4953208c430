"""GET /models and GET /models/{name}: what is loaded, every version on disk, and the cards."""

from __future__ import annotations

from fastapi import APIRouter

from service.dependencies import RegistryDep
from service.errors import NotFound, error_responses
from service.registry import ModelRegistry, ServedModel
from service.schemas import ModelInfo, ModelList, VersionInfo

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, summary="List the models")
async def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_describe(registry, served) for served in registry.models()])


@router.get("/models/{name}", response_model=ModelInfo, responses=error_responses(404), summary="Describe one model")
async def read_model(name: str, registry: RegistryDep) -> ModelInfo:
    for served in registry.models():
        if served.name == name:
            return _describe(registry, served)
    raise NotFound(f"no model named {name!r}",
                   accepted=f"one of: {', '.join(m.name for m in registry.models())}")


def _describe(registry: ModelRegistry, served: ServedModel) -> ModelInfo:
    versions = [
        VersionInfo(version=v, state="serving", card=served.card.model_dump(mode="json"))
        if v == served.version
        else VersionInfo(version=v, state="available")
        for v in registry.available_versions(served.name)
    ]
    return ModelInfo(
        name=served.name,
        task=served.card.task,
        labels=served.labels,
        serving_version=served.version,
        default=registry.default_name(served.card.task) == served.name,
        versions=versions,
    )
