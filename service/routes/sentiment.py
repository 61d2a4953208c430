"""POST /sentiment."""

# No `from __future__ import annotations` here: FastAPI must see the body type built at run time.

from typing import Any

from fastapi import APIRouter, Depends, Request

from service.artifacts import TEXT_TASK
from service.dependencies import RegistryDep
from service.errors import BadRequest, UnsupportedMediaType, error_responses
from service.schemas import SentimentResponse, TextResult, sentiment_request_model
from service.settings import Settings
from service.uploads import content_type

_ACCEPTED = 'a JSON object {"text": "..."} or {"texts": ["...", ...]}, optionally with "model"'


async def _json_body(request: Request) -> None:
    """Refuse what is not JSON before the body is validated, with a clearer word than 422."""
    kind, _ = content_type(request)
    if kind != "application/json":
        raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not accepted",
                                   accepted="application/json")
    if not await request.body():
        raise BadRequest("the body is empty", accepted=_ACCEPTED)


def build_router(settings: Settings) -> APIRouter:
    """The route, with this app's text limits in its request schema."""
    router = APIRouter(tags=["inference"])
    request_model = sentiment_request_model(settings.max_texts, settings.max_text_chars)

    @router.post(
        "/sentiment",
        response_model=SentimentResponse,
        responses=error_responses(400, 404, 413, 415, 422, 500, 503, 504),
        dependencies=[Depends(_json_body)],
        summary="Classify the sentiment of one or more texts",
    )
    async def classify_sentiment(
        body: request_model, request: Request, registry: RegistryDep  # type: ignore[valid-type]
    ) -> SentimentResponse:
        payload: Any = body  # its class is built at run time, so mypy cannot know its fields
        texts = payload.all_texts
        served = registry.get(payload.model, TEXT_TASK, payload.version)
        request.state.model = served.name
        answer = await served.batcher.submit([text.encode("utf-8") for text in texts])
        request.state.batch_size = answer.batch_size
        labels = served.labels
        results = [
            TextResult(
                label=labels[int(row.argmax())],
                probabilities={label: float(p) for label, p in zip(labels, row, strict=True)},
            )
            for row in answer.outputs
        ]
        return SentimentResponse(model=served.name, version=served.version, results=results)

    return router
