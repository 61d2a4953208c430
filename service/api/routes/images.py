"""POST /classify-image: uploads in, each image's top labels out (service.core.inference does the rest)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response, params

from contract.kinds import IMAGE
from service.api.responses import prediction_answer
from service.api.routes import add_inference_route
from service.api.routing import routing_key
from service.api.schemas import ImageClassificationResponse, ImageQuery
from service.api.uploads import MULTIPART, read_uploads
from service.core.imaging import MEDIA_TYPES
from service.core.inference import Inference
from service.payloads.log import PayloadLog

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


def add_route(app: FastAPI, dependencies: list[params.Depends], responses: dict[int | str, dict[str, Any]],
              payload_log: PayloadLog | None) -> None:
    """The route, handing its answers to `payload_log` when there is one."""

    async def classify_image(request: Request, query: Annotated[ImageQuery, Query()]) -> Response:
        inference: Inference = request.app.state.inference
        route = inference.route(query.model, IMAGE.task, query.version, routing_key(request))
        images = await read_uploads(request, route.version.handler.max_items)
        prediction = await inference.predict(route, images, explain=query.explain)
        results = prediction.results(images, top_k=query.top_k)
        if payload_log is not None:
            state = request.scope["state"]  # the ids service.api.access_log gave this request
            payload_log.record(state["request_id"], state["trace_id"], prediction, images, results)
        return prediction_answer(prediction, results)

    add_inference_route(app, "/classify-image", classify_image, dependencies=dependencies, responses=responses,
                        response_model=ImageClassificationResponse, openapi_extra={"requestBody": _REQUEST_BODY},
                        summary="Classify one or more images")
