"""GET /models/{name}/versions/{version}/files[/{filename}]: a loaded version's card files.

Training writes plots (PNG) and JSON next to a version's `model.json`; people evaluating a
model want to see them, and the page shows them. Only PNG and JSON files directly inside the
folder of a version that is loaded right now are served: a file is named by its plain name,
never by a path, and anything else is a 404 that says what is accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from service.api.dependencies import RegistryDep
from service.api.errors import error_responses
from service.core.errors import NotFound
from service.core.registry import ModelRegistry

router = APIRouter(tags=["models"])

CARD_FILE_TYPES = {".png": "image/png", ".json": "application/json"}
# A plain file name: no separators, no leading dot (so neither `..` nor hidden files), no NUL.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_ACCEPTED = "the plain name of a .png or .json file listed by GET /models/{name}/versions/{version}/files"


class CardFiles(BaseModel):
    name: str
    version: int
    files: list[str] = Field(description="The PNG and JSON files of the version's folder, by name.")


def _version_folder(registry: ModelRegistry, name: str, version: int) -> Path:
    model = registry.model(name)  # 404 for an unknown model
    loaded = model.loaded.get(version)
    if loaded is None:
        versions = ", ".join(str(v) for v in sorted(model.loaded))
        raise NotFound(f"version {version} of {name!r} is not loaded", accepted=f"one of: {versions}")
    return loaded.path.resolve()


def _servable(folder: Path, path: Path) -> bool:
    """A regular file of an accepted type whose real location is directly inside `folder`.

    The name is matched first, so a name with a separator, `..` or NUL never reaches the file system.
    """
    return (
        _PLAIN_NAME.fullmatch(path.name) is not None
        and path.suffix.lower() in CARD_FILE_TYPES
        and path.is_file()
        # resolve() follows symlinks: a link pointing out of the folder is refused.
        and path.resolve().parent == folder
    )


@router.get(
    "/models/{name}/versions/{version}/files",
    response_model=CardFiles,
    responses=error_responses(404),
    summary="List a loaded version's card files",
)
async def list_card_files(name: str, version: int, registry: RegistryDep) -> CardFiles:
    folder = _version_folder(registry, name, version)
    files = sorted(path.name for path in folder.iterdir() if _servable(folder, path))
    return CardFiles(name=name, version=version, files=files)


@router.get(
    "/models/{name}/versions/{version}/files/{filename}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file: a plot (PNG) or JSON written with the model card.",
            "content": {media: {"schema": {"type": "string", "format": "binary"}}
                        for media in CARD_FILE_TYPES.values()},
        },
        **error_responses(404),
    },
    summary="Read one card file of a loaded version",
)
async def read_card_file(name: str, version: int, filename: str, registry: RegistryDep) -> FileResponse:
    folder = _version_folder(registry, name, version)
    path = folder / filename
    # _servable checks the name before the file system is asked; a bad name is not echoed back whole.
    if not _servable(folder, path):
        raise NotFound(f"no card file {filename[:80]!r} in {name!r} version {version}", accepted=_ACCEPTED)
    return FileResponse(path, media_type=CARD_FILE_TYPES[path.suffix.lower()],
                        headers={"X-Content-Type-Options": "nosniff"})
