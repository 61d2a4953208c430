"""POST /classify-image."""

from __future__ import annotations

import asyncio
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from service.artifacts import IMAGE_TASK, ImageInput
from service.dependencies import RegistryDep, SettingsDep
from service.errors import ServiceError, error_responses
from service.imaging import MEDIA_TYPES, decode_image
from service.schemas import ImageClassificationResponse, ImageResult, LabelProbability
from service.uploads import MULTIPART, Upload, read_uploads

router = APIRouter(tags=["inference"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_REQUEST_BODY = {
    "required": True,
    "description": "One image as the raw body, or one or more images as multipart 'file' parts.",
    "content": {
        **{media: _BINARY for media in MEDIA_TYPES.values()},
        MULTIPART: {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                "required": ["file"],
            },
            "encoding": {"file": {"contentType": ", ".join(MEDIA_TYPES.values())}},
        },
    },
}


@router.post(
    "/classify-image",
    response_model=ImageClassificationResponse,
    responses=error_responses(400, 404, 413, 415, 422, 500, 503, 504),
    openapi_extra={"requestBody": _REQUEST_BODY},
    summary="Classify one or more images",
)
async def classify_image(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    model: Annotated[str | None, Query(max_length=200, description="Image model; the only one by default.")] = None,
    version: Annotated[int | None, Query(ge=1, description="Pin a loaded version; the newest by default.")] = None,
    top_k: Annotated[int, Query(ge=1, le=100, description="How many labels to list per image.")] = 3,
) -> ImageClassificationResponse:
    served = registry.get(model, IMAGE_TASK, version)
    request.state.model = served.name
    uploads = await read_uploads(request, settings.max_files)
    assert isinstance(served.card.input, ImageInput)
    size = (served.card.input.height, served.card.input.width)
    pool = request.app.state.decode_pool
    loop = asyncio.get_running_loop()
    images = await asyncio.gather(
        *(loop.run_in_executor(pool, _decode, index, upload, size, settings.max_image_pixels)
          for index, upload in enumerate(uploads))
    )
    answer = await served.batcher.submit(images)
    request.state.batch_size = answer.batch_size
    labels = served.labels
    top_k = min(top_k, len(labels))
    results = []
    for upload, probabilities in zip(uploads, answer.outputs, strict=True):
        ranked = np.argsort(probabilities)[::-1][:top_k]
        top = [LabelProbability(label=labels[i], probability=float(probabilities[i])) for i in ranked]
        results.append(ImageResult(filename=upload.filename, label=top[0].label,
                                   probability=top[0].probability, top_k=top))
    return ImageClassificationResponse(model=served.name, version=served.version, results=results)


def _decode(index: int, upload: Upload, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    try:
        return decode_image(upload.data, size[0], size[1], max_pixels)
    except ServiceError as exc:
        name = f" ({upload.filename})" if upload.filename else ""
        exc.message = f"image {index}{name}: {exc.message}"
        raise
