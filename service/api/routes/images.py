"""POST /classify-image."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request, Response, params

from service.api.dependencies import Decoder
from service.api.responses import model_answer
from service.api.routes import add_inference_route
from service.api.schemas import ImageClassificationResponse, ImageQuery
from service.api.uploads import MULTIPART, Upload, read_uploads
from service.core.handlers import ImageHandler
from service.core.imaging import MEDIA_TYPES
from service.core.monitoring import IMAGE_HEIGHT, IMAGE_WIDTH
from service.core.registry import ModelRegistry

if TYPE_CHECKING:
    from service.core.spans import Tracing

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


async def classify_image(request: Request, query: Annotated[ImageQuery, Query()]) -> Response:
    registry: ModelRegistry = request.app.state.registry
    served = registry.get(query.model, ImageHandler.kind.task, query.version)
    handler = served.handler
    assert isinstance(handler, ImageHandler)
    uploads = await read_uploads(request, handler.max_items)
    decoder: Decoder = request.app.state.decoder
    tracing: Tracing | None = request.app.state.tracing
    decodes = [_decode(decoder, handler, upload, _subject(index, upload), tracing)
               for index, upload in enumerate(uploads)]
    decoded = [await decodes[0]] if len(decodes) == 1 else await asyncio.gather(*decodes)
    rows = [row for row, _, _ in decoded]
    # Sizes as uploaded, for the monitor's input summaries (nothing else of an image is kept).
    inputs = ({IMAGE_WIDTH: [width for _, width, _ in decoded], IMAGE_HEIGHT: [height for _, _, height in decoded]}
              if served.monitor is not None else None)
    answer = await served.batcher.submit(rows[0] if len(rows) == 1 else np.concatenate(rows), inputs=inputs)
    results = [
        {"filename": upload.filename, "label": top[0][0], "probability": top[0][1],
         "top_k": [{"label": label, "probability": p} for label, p in top]}
        for upload, top in zip(uploads, handler.top_k(answer.outputs, query.top_k), strict=True)
    ]
    body = {"model": served.name, "version": served.version, "results": results}
    return model_answer(body, served.name, served.version, answer.batch_size)


def add_route(app: FastAPI, dependencies: list[params.Depends], responses: dict[int | str, dict[str, Any]]) -> None:
    add_inference_route(app, "/classify-image", classify_image, dependencies=dependencies, responses=responses,
                        response_model=ImageClassificationResponse, openapi_extra={"requestBody": _REQUEST_BODY},
                        summary="Classify one or more images")


async def _decode(decoder: Decoder, handler: ImageHandler, upload: Upload, subject: str,
                  tracing: Tracing | None) -> tuple[np.ndarray, int, int]:
    if tracing is None:
        return await decoder.run(len(upload.data), handler.decode_with_size, upload.data, subject)
    with tracing.span("decode image", **{"image.bytes": len(upload.data)}):
        return await decoder.run(len(upload.data), handler.decode_with_size, upload.data, subject)


def _subject(index: int, upload: Upload) -> str:
    return f"image {index}" + (f" ({upload.filename})" if upload.filename else "")
