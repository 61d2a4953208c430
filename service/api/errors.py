"""The one place where errors become HTTP answers: a status and code per error, and the wire shape.

Two shapes: the service's own (`ErrorResponse`) and, on the Open Inference Protocol's routes,
the protocol's `{"error": "..."}`. A route chooses its shape by its route class
(`ProtocolRoute`), not by its path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from service.core import errors

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


class ProtocolRoute(APIRoute):
    """A route that answers errors in the Open Inference Protocol's shape."""


# Domain error -> (status, code). A subclass not listed takes its nearest listed base's entry.
STATUS: dict[type[errors.ServiceError], tuple[int, str]] = {
    errors.ServiceError: (500, "internal_error"),
    errors.MalformedRequest: (400, "bad_request"),
    errors.InvalidImage: (400, "invalid_image"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.NotFound: (404, "not_found"),
    errors.TooLarge: (413, "payload_too_large"),
    errors.UnsupportedMediaType: (415, "unsupported_media_type"),
    errors.InvalidInput: (422, "invalid_input"),
    errors.InferenceFailed: (500, "inference_failed"),
    errors.NotReady: (503, "unavailable"),
    errors.Overloaded: (503, "overloaded"),
    errors.ShuttingDown: (503, "shutting_down"),
    errors.DeadlineExceeded: (504, "timeout"),
}

# Errors Starlette and FastAPI answer themselves (a body FastAPI cannot parse, e.g. invalid UTF-8 in a
# JSON string; unknown path; wrong method), in the same table's words.
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}

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


def status_of(error: errors.ServiceError) -> tuple[int, str]:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return STATUS[errors.ServiceError]


def error_responses(*statuses: int, model: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer."""
    return {status: {"model": model, "description": _DESCRIPTIONS[status]} for status in statuses}


def error_json(
    request: Request, status: int, code: str, message: str, accepted: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error response, in the shape of the route that was asked."""
    headers = dict(headers or {})
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(request.scope.get("route"), ProtocolRoute):
        text = f"{message} (accepted: {accepted})" if accepted else message
        return JSONResponse({"error": text}, status_code=status, headers=headers)
    body = ErrorResponse(
        error=ErrorDetail(code=code, message=message, accepted=accepted),
        request_id=request.scope.get("state", {}).get("request_id"),
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


# The handlers are module functions, not closures made per app: each request then reaches them
# afresh, so mutation testing (tests/mutate.py) can tell which tests exercise each one.
async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    status, code = status_of(exc)
    if status == 500:
        log.error("%s: %s", code, exc.message)
    return error_json(request, status, code, exc.message, exc.accepted)


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return error_json(request, 400, "invalid_json", "the body is not valid JSON",
                          accepted="a UTF-8 JSON object")
    return error_json(request, 422, "invalid_input", _describe_validation(exc))


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, errors.ServiceError):
        # FastAPI's body parser wraps whatever reading the body raised (e.g. the body limit's
        # TooLarge) in a generic 400; answer the original instead.
        return await on_service_error(request, exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, "error")
    # RFC 9110: a 405 names the methods the resource does take.
    return error_json(request, exc.status_code, code, str(exc.detail), headers=exc.headers)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return error_json(request, 500, "internal_error", "an unexpected error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
