"""The inference routes' route class: FastAPI documents them, a lean adapter serves them.

FastAPI answers a request through a general machinery: its dependency solver, body parser,
response handling and exit stacks, rebuilt for every request. For one tweet that costs more
of the event loop than everything the service itself does for it (`python -m loadtests.profile`;
docs/decisions/0002-lean-route.md has the figures before and after).

A `LeanRoute` keeps what FastAPI builds once from the endpoint's signature and options (the
path, methods, the OpenAPI operation, 405 with `Allow`, the app's error handlers and
middleware), and serves each request with an adapter made when the route is built, which
supports only what the inference routes use:

- a parameter annotated `Request`;
- one JSON body, a parameter annotated with a pydantic model, validated straight from the bytes;
- query parameters as one pydantic model, a parameter annotated `Annotated[Model, Query()]`;
- route dependencies that take only the request (the API key check, content checks).

Anything else is refused when the route is built, never at request time. The dependencies
are called as they are: `app.dependency_overrides` does not reach them. Invalid input is
raised as FastAPI's `RequestValidationError`, located as FastAPI locates it ("body", "query"),
so the one error table (service.api.errors) answers it as on every other route.

The route must be added to the app itself (`app.router.add_api_route(...,
route_class_override=LeanRoute)`), not through `include_router`: an included route is served
from FastAPI's own copy of it, with the including router's dependencies.

Reaches into: `APIRoute.app` (replaced), `APIRoute.dependencies`, `RequestValidationError`'s error format.
Tested on: FastAPI 0.165 with Starlette 1.10 (the lock's); tests/service/shims/test_fastapi_lean_route.py
compares its answers with FastAPI's own route.
Remove when: FastAPI's own per-request cost for a route with one body model is close to this adapter's
(measure with `python -m loadtests.profile`).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send


class LeanRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Awaitable[Response]], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        self._checks = [_request_only(path, depends) for depends in self.dependencies]
        self._request, self._query, self._body = _parameters(path, endpoint)
        self.app = self._serve

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        for check in self._checks:
            await check(request)
        arguments: dict[str, Any] = {}
        if self._request is not None:
            arguments[self._request] = request
        if self._query is not None:
            name, model = self._query
            arguments[name] = _validated("query", model.model_validate, dict(request.query_params))
        if self._body is not None:
            name, model = self._body
            arguments[name] = _validated("body", model.model_validate_json, await request.body())
        response: Response = await self.endpoint(**arguments)
        await response(scope, receive, send)


def _validated(where: str, validate: Callable[[Any], BaseModel], data: Any) -> BaseModel:
    try:
        return validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": (where, *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def _request_only(path: str, depends: params.Depends) -> Callable[[Request], Awaitable[Any]]:
    check = depends.dependency
    if check is None or list(inspect.signature(check).parameters) != ["request"]:
        raise TypeError(f"{path}: a LeanRoute's dependencies take only the request, not {check!r}")
    return check


def _parameters(
    path: str, endpoint: Callable[..., Any]
) -> tuple[str | None, tuple[str, type[BaseModel]] | None, tuple[str, type[BaseModel]] | None]:
    """The endpoint's request parameter, query model and body model (each by parameter name)."""
    hints = typing.get_type_hints(endpoint, include_extras=True)
    request = query = body = None
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        if hint is Request:
            request = name
        elif typing.get_origin(hint) is Annotated and _is_model(model := typing.get_args(hint)[0]) and any(
            isinstance(extra, params.Query) for extra in typing.get_args(hint)[1:]
        ):
            query = (name, model)
        elif _is_model(hint) and body is None:
            body = (name, hint)
        else:
            raise TypeError(f"{path}: a LeanRoute cannot supply the parameter {name!r} ({hint!r})")
    return request, query, body


def _is_model(hint: object) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(hint, type) and issubclass(hint, BaseModel)
