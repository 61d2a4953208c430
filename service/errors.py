"""The one error shape, and the one place where errors become HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from service.batcher import BatcherClosedError, BatchFailedError, DeadlineExceededError, QueueFullError

log = logging.getLogger("service.errors")

RETRY_AFTER_S = 1


class ErrorDetail(BaseModel):
    code: str
    message: str
    accepted: str | None = None


class ErrorResponse(BaseModel):
    """Every error the service answers has this shape."""

    error: ErrorDetail
    request_id: str | None = None


class ProtocolErrorResponse(BaseModel):
    """The Open Inference Protocol's error shape, used on its /v2 routes."""

    error: str


class ServiceError(Exception):
    """A request the service cannot answer as asked; subclasses fix the status and code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, accepted: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.accepted = accepted


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class InvalidImage(ServiceError):
    status, code = 400, "invalid_image"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class Unavailable(ServiceError):
    status, code = 503, "unavailable"


# What the batcher's errors mean to a client.
_BATCHER_ERRORS: dict[type[Exception], tuple[int, str]] = {
    QueueFullError: (503, "overloaded"),
    BatcherClosedError: (503, "shutting_down"),
    DeadlineExceededError: (504, "timeout"),
    BatchFailedError: (500, "inference_failed"),
}

# The codes of plain HTTP errors (from routing and Starlette), taken from the classes above.
_HTTP_CODES = {
    error.status: error.code
    for error in (ServiceError, BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType, InvalidInput, Unavailable)
} | {405: "method_not_allowed"}

_DESCRIPTIONS = {
    400: "The body is not what the route accepts (not JSON, not an image, corrupt or truncated data).",
    401: "A missing or wrong API key.",
    404: "No such model or version.",
    413: "The body, an image's pixel count, or the number of files is over its limit.",
    415: "A Content-Type the route does not accept.",
    422: "Well-formed input with wrong types, missing fields, or values out of range.",
    500: "The model call failed; the service keeps serving.",
    503: "Overloaded (queue full) or not ready; retry after the Retry-After header's seconds.",
    504: "The request waited longer than the request timeout.",
}


def error_responses(*statuses: int, model: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    return {status: {"model": model, "description": _DESCRIPTIONS[status]} for status in statuses}


OPEN_INFERENCE_PREFIX = "/v2"


def error_json(request: Request, status: int, code: str, message: str, accepted: str | None = None) -> JSONResponse:
    """The error response; the Open Inference Protocol's routes answer in its own shape."""
    headers = {}
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if request.url.path.startswith(OPEN_INFERENCE_PREFIX):
        text = f"{message} (accepted: {accepted})" if accepted else message
        return JSONResponse({"error": text}, status_code=status, headers=headers)
    body = ErrorResponse(
        error=ErrorDetail(code=code, message=message, accepted=accepted),
        request_id=getattr(request.state, "request_id", None),
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_json(request, exc.status, exc.code, exc.message, exc.accepted)

    async def on_batcher_error(request: Request, exc: Exception) -> JSONResponse:
        status, code = _BATCHER_ERRORS[type(exc)]
        if status == 500:
            log.error("batch failed: %s", exc)
        return error_json(request, status, code, str(exc))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            return error_json(request, 400, "invalid_json", "the body is not valid JSON",
                              accepted="a UTF-8 JSON object")
        return error_json(request, 422, "invalid_input", _describe_validation(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_json(request, exc.status_code, code, str(exc.detail))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_json(request, 500, "internal_error", "an unexpected error; it has been logged")

    app.add_exception_handler(ServiceError, on_service_error)
    for error_type in _BATCHER_ERRORS:
        app.add_exception_handler(error_type, on_batcher_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
