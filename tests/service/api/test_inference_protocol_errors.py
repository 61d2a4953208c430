"""Bad input to the Open Inference Protocol routes: a 4xx in the protocol's error shape."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.tiny_models import build_text_model, expected_positive

URL = "/v2/models/tiny-text/infer"
IMAGE_URL = "/v2/models/tiny-image/infer"


def text_input(**changes) -> dict:
    return {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["good"]} | changes]}


def assert_protocol_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and fragment in response.json()["error"]


def test_json_inference_answers_in_the_protocol_shape(client: TestClient) -> None:
    response = client.post(URL, json=text_input(shape=[2], data=["good", "bad"]) | {"id": "x"})
    assert response.headers["content-type"] == "application/json"
    # The same headers as the service's own routes: who answered, in how large a batch.
    assert (response.headers["x-model"], response.headers["x-model-version"]) == ("tiny-text", "2")
    assert int(response.headers["x-batch-size"]) >= 2
    body = response.json()
    assert body["model_name"] == "tiny-text" and body["model_version"] == "2" and body["id"] == "x"
    [output] = body["outputs"]
    assert output["name"] == "probabilities" and output["shape"] == [2, 2] and len(output["data"]) == 4


def test_model_metadata_describes_the_served_tensors(client: TestClient) -> None:
    # What a protocol client reads to build its request; tritonclient checks the same on a real server.
    assert client.get("/v2/models/tiny-image").json() == {
        "name": "tiny-image", "versions": ["1"], "platform": "tensorflow_savedmodel",
        "inputs": [{"name": "images", "datatype": "UINT8", "shape": [-1, 8, 8, 3]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
    }
    text = client.get("/v2/models/tiny-text/versions/1").json()
    assert (text["name"], text["versions"]) == ("tiny-text", ["1", "2"])
    assert (text["inputs"], text["outputs"]) == ([{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                                                 [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}])


def test_binary_output_follows_a_json_header_whose_length_is_given(client: TestClient) -> None:
    texts = ["good", "bad bad"]
    request = text_input(shape=[2], data=texts) | {"outputs": [{"name": "probabilities",
                                                                 "parameters": {"binary_data": True}}]}
    response = client.post(URL, json=request)
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    head, raw = json.loads(response.content[:length]), response.content[length:]
    [output] = head["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("probabilities", "FP32", [2, 2])
    assert output["parameters"] == {"binary_data_size": len(raw)} and "data" not in output
    positives = struct.unpack("<4f", raw)[1::2]
    assert positives == pytest.approx([expected_positive(text, 2) for text in texts], abs=1e-5)


def test_a_request_is_answered_by_the_model_it_names_not_by_the_default_of_its_kind(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(artifacts_dir / "tiny-text" / "2", tmp_path / "tiny-text" / "2")  # the default text model
    build_text_model(tmp_path / "reviews" / "3")
    with TestClient(create_app(make_settings(artifacts_dir=tmp_path, reload_interval_s=0))) as client:
        body = client.post("/v2/models/reviews/infer", json=text_input(data=["good"])).json()
    assert (body["model_name"], body["model_version"]) == ("reviews", "3")
    assert body["outputs"][0]["data"][1] == pytest.approx(expected_positive("good", 3), abs=1e-5)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"", 400, "not valid JSON"),
    (b"{nope", 400, "not valid JSON"),
    (b"[]", 422, "malformed inference request"),
    (b'{"inputs": []}', 422, "inputs"),
    (json.dumps(text_input(name="images")).encode(), 422, "one input named 'text'"),
    (json.dumps(text_input(datatype="FP32")).encode(), 422, "must be BYTES"),
    (json.dumps(text_input(shape=[2])).encode(), 422, "1 elements for shape [2]"),
    (json.dumps(text_input(shape=[-1])).encode(), 422, "shape.0: Input should be greater than or equal to 0"),
    (json.dumps(text_input(shape=[1, 2])).encode(), 422, "must have shape [n] or [n, 1]"),
    (json.dumps(text_input(data=[7])).encode(), 422, "BYTES data must be strings"),
    (json.dumps(text_input(data=None)).encode(), 422, "neither 'data' nor binary data"),
    (json.dumps(text_input(shape=[65], data=["a"] * 65)).encode(), 422, "1 to 64 accepted"),
    (json.dumps(text_input() | {"outputs": [{"name": "logits"}]}).encode(), 422, "no output named 'logits'"),
], ids=["empty", "not-json", "not-object", "no-inputs", "wrong-name", "wrong-type", "count", "negative", "rank",
        "not-strings", "no-data", "too-many", "unknown-output"])
def test_malformed_requests(client: TestClient, body: bytes, status: int, fragment: str) -> None:
    assert_protocol_error(client.post(URL, content=body), status, fragment)


def test_uint8_values_out_of_range_are_refused(client: TestClient) -> None:
    tensor = {"name": "images", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [300] * 192}
    assert_protocol_error(client.post(IMAGE_URL, json={"inputs": [tensor]}), 422, "integers from 0 to 255")


@pytest.mark.parametrize(("header", "binary", "size", "fragment"), [
    ("abc", b"", 4, "is not a number"),
    ("99999", b"", 4, "does not fit"),
    (None, struct.pack("<I", 50) + b"good", 8, "is cut off"),
    (None, struct.pack("<I", 4) + b"good", 100, "overruns the binary data"),
])
def test_malformed_binary_tensor_data(client: TestClient, header, binary: bytes, size: int, fragment: str) -> None:
    head = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": size}}]}).encode()
    length = header if header is not None else str(len(head))
    response = client.post(URL, content=head + binary, headers={"Inference-Header-Content-Length": length})
    assert response.status_code in (400, 422) and fragment in response.json()["error"]


def test_a_protocol_error_says_what_is_accepted_when_the_service_knows(client: TestClient) -> None:
    unknown = client.post("/v2/models/nope/infer", json=text_input())
    assert unknown.json() == {"error": "no model named 'nope' (accepted: one of: tiny-image, tiny-text)"}
    output = client.post(URL, json=text_input() | {"outputs": [{"name": "logits"}]})
    assert output.json() == {"error": "no output named 'logits'; the outputs are 'probabilities' (and, with "
                             "parameters.explain, 'token_weights', 'token_offsets')"}


def test_unknown_model_and_version(client: TestClient) -> None:
    assert_protocol_error(client.post("/v2/models/nope/infer", json=text_input()), 404, "no model named 'nope'")
    assert_protocol_error(client.get("/v2/models/tiny-text/versions/9"), 404, "version 9 of 'tiny-text' is not loaded")
    assert client.get("/v2/models/tiny-text/versions/0").status_code == 422


def test_an_oversized_infer_body_is_a_413(client: TestClient) -> None:
    response = client.post(URL, content=b"{" + b" " * 70_000 + b"}")
    assert_protocol_error(response, 413, "over the limit")
