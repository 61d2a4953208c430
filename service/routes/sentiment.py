"""POST /sentiment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from service.artifacts import TEXT_TASK
from service.dependencies import RegistryDep, SettingsDep
from service.errors import BadRequest, InvalidInput, UnsupportedMediaType, error_responses
from service.schemas import SentimentRequest, SentimentResponse, TextResult
from service.settings import Settings

router = APIRouter(tags=["inference"])

_ACCEPTED = 'a JSON object {"text": "..."} or {"texts": ["...", ...]}, optionally with "model"'


async def _json_body(request: Request) -> None:
    """Refuse what is not JSON before the body is validated, with a clearer word than 422."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":
        raise UnsupportedMediaType(f"Content-Type {kind or '(none)'!r} is not accepted",
                                   accepted="application/json")
    if not await request.body():
        raise BadRequest("the body is empty", accepted=_ACCEPTED)


@router.post(
    "/sentiment",
    response_model=SentimentResponse,
    responses=error_responses(400, 404, 413, 415, 422, 500, 503, 504),
    dependencies=[Depends(_json_body)],
    summary="Classify the sentiment of one or more texts",
)
async def classify_sentiment(
    body: SentimentRequest, request: Request, registry: RegistryDep, settings: SettingsDep
) -> SentimentResponse:
    texts = _checked_texts(body, settings)
    served = registry.get(body.model, TEXT_TASK)
    request.state.model = served.name
    answer = await served.batcher.submit(texts)
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


def _checked_texts(body: SentimentRequest, settings: Settings) -> list[bytes]:
    """The texts as UTF-8, after the checks that need the settings' limits."""
    if (body.text is None) == (body.texts is None):
        raise InvalidInput("send exactly one of 'text' or 'texts'", accepted=_ACCEPTED)
    texts = [body.text] if body.text is not None else body.texts or []
    if not texts:
        raise InvalidInput("'texts' is empty", accepted=f"1 to {settings.max_texts} texts")
    if len(texts) > settings.max_texts:
        raise InvalidInput(f"{len(texts)} texts sent; the limit is {settings.max_texts}",
                           accepted=f"1 to {settings.max_texts} texts")
    encoded = []
    for index, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise InvalidInput(f"text {index} has {len(text)} characters; the limit is {settings.max_text_chars}",
                               accepted=f"texts of at most {settings.max_text_chars} characters")
        if "\x00" in text:
            raise InvalidInput(f"text {index} contains a NUL character", accepted="text without NUL characters")
        try:
            encoded.append(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(f"text {index} is not valid Unicode (an unpaired surrogate escape)",
                               accepted="valid UTF-8 text") from None
    return encoded
