"""One module per resource. The inference routes (images, sentiment) are added by `add_inference_route`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Response, params

from service.api.errors import error_responses
from service.shims.fastapi_lean_route import LeanRoute


def add_inference_route(
    app: FastAPI, path: str, endpoint: Callable[..., Awaitable[Response]], *, dependencies: list[params.Depends],
    responses: dict[int | str, dict[str, Any]], **options: Any,
) -> None:
    """A POST route that runs a model: a LeanRoute of the app itself (an included one would not be
    lean), answering the errors a model call can end in beside the app's own `responses`."""
    app.router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        route_class_override=LeanRoute,
        responses={**responses, **error_responses(400, 404, 413, 415, 422, 500, 503, 504)},
        dependencies=dependencies,
        tags=["inference"],
        **options,
    )
