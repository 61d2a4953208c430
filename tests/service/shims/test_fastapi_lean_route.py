"""LeanRoute (service/shims/fastapi_lean_route.py): the same answers as FastAPI's own route, without its machinery."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from service.api.errors import install_error_handlers
from service.core.errors import UnsupportedMediaType
from service.shims.fastapi_lean_route import LeanRoute


class Body(BaseModel):
    text: str = Field(max_length=10)
    count: int = Field(1, ge=1)


class Options(BaseModel):
    top_k: int = Field(3, ge=1, le=5)
    name: str | None = Field(None, max_length=4)


async def needs_json(request: Request) -> None:
    if request.headers.get("content-type") != "application/json":
        raise UnsupportedMediaType("not JSON", accepted="application/json")


async def echo(request: Request, body: Body, options: Annotated[Options, Query()]) -> Response:
    return JSONResponse({"method": request.method, "body": body.model_dump(), "options": options.model_dump()})


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    for path, route_class in (("/lean", LeanRoute), ("/fastapi", None)):
        app.router.add_api_route(path, echo, methods=["POST"], dependencies=[Depends(needs_json)],
                                 route_class_override=route_class)
    return TestClient(app)


REQUESTS = [
    ("", b'{"text": "hello", "count": 2}', "application/json"),
    ("?top_k=5&name=abc", b'{"text": "hello"}', "application/json"),
    ("?top_k=1&top_k=2", b'{"text": "hello"}', "application/json"),  # the last value wins, as in FastAPI
    ("?top_k=9", b'{"text": "hello"}', "application/json"),
    ("?top_k=two&name=toolong", b'{"text": "hello"}', "application/json"),
    ("?unknown=1", b'{"text": "hello"}', "application/json"),
    ("", b'{"text": "far too long a text"}', "application/json"),
    ("", b'{"text": 5, "count": 0}', "application/json"),
    ("", b'{"count": 2}', "application/json"),
    ("", b"{not json", "application/json"),
    ("", b'{"text": "hello"}', "text/plain"),
]


@pytest.mark.parametrize(("query", "body", "content_type"), REQUESTS)
def test_a_lean_route_answers_what_fastapis_own_route_answers(client: TestClient, query: str, body: bytes,
                                                              content_type: str) -> None:
    lean = client.post("/lean" + query, content=body, headers={"Content-Type": content_type})
    plain = client.post("/fastapi" + query, content=body, headers={"Content-Type": content_type})
    assert (lean.status_code, lean.json()) == (plain.status_code, plain.json())


# Where the two differ, by design: the lean route validates the bytes as JSON with pydantic, whose
# words are plainer than those of FastAPI's json.loads-then-validate, and which reads an empty
# body as the JSON it is not (FastAPI: a missing body, 422). The service's routes refuse an empty
# body before either (service/api/routes/sentiment.py).
@pytest.mark.parametrize(("body", "status", "message"), [
    (b"[1, 2]", 422, "body: Input should be an object"),
    (b"null", 422, "body: Input should be an object"),
    (b"", 400, "the body is not valid JSON"),
    (b'{"text": "caf\xe9"}', 400, "the body is not valid JSON"),  # FastAPI: 400, "There was an error parsing the body"
])
def test_where_a_lean_route_answers_otherwise_it_answers_in_plainer_words(client: TestClient, body: bytes, status: int,
                                                                          message: str) -> None:
    response = client.post("/lean", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["error"]["message"]) == (status, message)


def test_a_lean_route_keeps_the_method_check_and_its_allow_header(client: TestClient) -> None:
    response = client.get("/lean")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


def test_the_schema_shows_a_lean_route_as_fastapi_would(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    lean, plain = paths["/lean"]["post"], paths["/fastapi"]["post"]
    assert {key: value for key, value in lean.items() if key != "operationId"} == {
        key: value for key, value in plain.items() if key != "operationId"
    }
    assert [parameter["name"] for parameter in lean["parameters"]] == ["top_k", "name"]


async def _takes_a_header(request: Request, token: str) -> None: ...


async def _takes_a_number(count: int) -> Response:
    return Response()


def test_what_a_lean_route_cannot_supply_is_refused_when_the_route_is_built() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match="parameter 'count'"):
        app.router.add_api_route("/a", _takes_a_number, methods=["POST"], route_class_override=LeanRoute)
    with pytest.raises(TypeError, match="take only the request"):
        app.router.add_api_route("/b", echo, methods=["POST"], dependencies=[Depends(_takes_a_header)],
                                 route_class_override=LeanRoute)


def test_the_inference_routes_are_lean() -> None:
    from service.app import create_app

    lean = {route.path for route in create_app().routes if isinstance(route, LeanRoute)}
    assert lean == {"/sentiment", "/classify-image"}
