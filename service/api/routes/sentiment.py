"""POST /sentiment: texts in, each text's label and probabilities out (service.core.inference does the rest)."""

# No `from __future__ import annotations` here: FastAPI must see the body type built at run time.

from typing import Any

from fastapi import Depends, FastAPI, Request, Response, params

from contract.kinds import TEXT
from service.api.responses import prediction_answer
from service.api.routes import add_inference_route
from service.api.routing import routing_key
from service.api.schemas import SentimentResponse, sentiment_request_model
from service.api.uploads import content_type
from service.core.errors import MalformedRequest, UnsupportedMediaType
from service.core.inference import Inference
from service.payloads.log import PayloadLog
from service.settings import Settings

_ACCEPTED = 'a JSON object {"text": "..."} or {"texts": ["...", ...]}, optionally with "model", "version", "explain"'


async def _json_body(request: Request) -> None:
    """Refuse what is not JSON before the body is validated, with a clearer word than 422."""
    kind, _ = content_type(request)
    if kind != "application/json":
        raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not accepted",
                                   accepted="application/json")
    if not await request.body():
        raise MalformedRequest("the body is empty", accepted=_ACCEPTED)


def add_route(app: FastAPI, settings: Settings, dependencies: list[params.Depends],
              responses: dict[int | str, dict[str, Any]], payload_log: PayloadLog | None) -> None:
    """The route, with this app's text limits in its request schema, handing its answers to `payload_log`."""
    request_model = sentiment_request_model(settings.max_texts, settings.max_text_chars, settings.explain_max_items)

    async def classify_sentiment(request: Request, body: request_model) -> Response:  # type: ignore[valid-type]
        payload: Any = body  # its class is built at run time, so mypy cannot know its fields
        inference: Inference = request.app.state.inference
        route = inference.route(payload.model, TEXT.task, payload.version, routing_key(request))
        texts = payload.all_texts
        prediction = await inference.predict(route, texts, explain=payload.explain)
        results = prediction.results(texts)
        if payload_log is not None:
            state = request.scope["state"]  # the ids service.api.access_log gave this request
            payload_log.record(state["request_id"], state["trace_id"], prediction, texts, results)
        return prediction_answer(prediction, results)

    add_inference_route(app, "/sentiment", classify_sentiment, dependencies=[*dependencies, Depends(_json_body)],
                        responses=responses, response_model=SentimentResponse,
                        summary="Classify the sentiment of one or more texts")
