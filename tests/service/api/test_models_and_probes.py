"""GET /models, /healthz, /readyz, /metrics and /openapi.json."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.api.test_classify_image import assert_error
from tests.service.images import solid
from tests.tiny_models import build_text_model


def test_models_lists_each_model_its_versions_and_the_served_card(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert set(models) == {"tiny-image", "tiny-text"}
    text = models["tiny-text"]
    assert text["serving_version"] == 2 and text["default"] is True
    assert [(v["version"], v["state"]) for v in text["versions"]] == [(1, "loaded"), (2, "serving")]
    served_card = text["versions"][1]["card"]
    tokenizer = {"rules": "glove-words", "social": False, "split_hashtags": False, "keep": "head"}
    assert served_card["labels"] == ["negative", "positive"]
    assert served_card["input"] == {"max_tokens": 64, "tokenizer": tokenizer}
    for version in text["versions"]:  # every loaded version is monitored, with the configured window
        monitoring = version["monitoring"]
        assert (monitoring["window"], monitoring["threshold"], monitoring["reference_split"]) == (1000, 0.25, None)
        # and runs on float32, as the test settings ask (tests/service/core/test_runtimes.py has the others)
        assert version["runtime"] == {"name": "tensorflow", "reason": "SERVICE_RUNTIME=tensorflow", "verification": {}}
        assert version["explains"] is True  # its card declares its tokenizer


def test_versions_on_disk_that_are_not_loaded_are_listed_as_available_or_failed_with_the_reason(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(artifacts_dir / "tiny-text" / "1", tmp_path / "tiny-text" / "1")  # older than the two kept
    broken = shutil.copytree(artifacts_dir / "tiny-text" / "2", tmp_path / "tiny-text" / "2")
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    build_text_model(tmp_path / "tiny-text" / "3")
    settings = make_settings(artifacts_dir=tmp_path, model_versions=2, monitoring=False, reload_interval_s=0)
    with TestClient(create_app(settings)) as client:
        versions = client.get("/models/tiny-text").json()["versions"]
    available, failed, serving = versions
    assert available == {"version": 1, "state": "available", "card": None, "error": None, "monitoring": None,
                         "runtime": None, "explains": None}
    assert (failed["version"], failed["state"], failed["card"]) == (2, "failed", None)
    assert failed["error"].startswith(f"{broken}: cannot load the SavedModel")
    assert (serving["version"], serving["state"], serving["monitoring"]) == (3, "serving", None)  # monitoring off
    assert serving["card"] == json.loads((tmp_path / "tiny-text" / "3" / "model.json").read_text())


def test_one_model_by_name(client: TestClient) -> None:
    body = client.get("/models/tiny-image").json()
    assert body["task"] == "image-classification" and body["labels"] == ["red", "green", "blue"]


def test_an_unknown_model_name_is_a_404(client: TestClient) -> None:
    assert "tiny-image" in assert_error(client.get("/models/unknown"), 404, "not_found")["accepted"]


def test_health_and_readiness_once_started(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readiness_is_503_until_the_models_have_loaded(make_settings: Callable[..., Settings]) -> None:
    not_started = TestClient(create_app(make_settings()))  # no `with`: the lifespan has not run
    assert not_started.get("/healthz").status_code == 200
    response = not_started.get("/readyz")
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"


def test_metrics_cover_requests_batches_and_models_with_bounded_labels(client: TestClient) -> None:
    client.post("/sentiment", json={"texts": ["good", "bad"]})
    client.post("/classify-image", content=solid("red"), headers={"Content-Type": "image/png"})
    client.get("/models/some-random-name-1234")
    client.get("/no/such/path/5678")
    text = client.get("/metrics").text
    for name in ("service_requests_total", "service_request_duration_seconds_bucket",
                 "service_batch_queue_wait_seconds_bucket", "service_batch_size_bucket",
                 "service_model_inference_seconds_bucket", "service_batch_queue_depth",
                 "service_model_version_loaded"):
        assert name in text, name
    assert 'service_requests_total{model="tiny-text",route="/sentiment",status="200"}' in text
    assert 'service_requests_total{model="",route="/models/{name}",status="404"}' in text
    assert 'route="unmatched",status="404"' in text
    assert 'service_model_version_loaded{model="tiny-text",version="2"} 1.0' in text
    assert "some-random-name" not in text and "5678" not in text


def test_an_unexpected_error_is_a_500_in_the_error_shape_and_is_logged_with_its_traceback(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings())

    async def broken() -> None:  # stands in for a bug anywhere in a route
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        response = TestClient(app, raise_server_exceptions=False).get("/broken")
    assert response.status_code == 500
    # The bug's own words stay in the log.
    assert response.json()["error"] == {"code": "internal_error", "message": "an unexpected error; it has been logged",
                                        "accepted": None}
    [record] = [r for r in caplog.records if r.name == "service.errors"]
    assert record.getMessage() == "unhandled error" and record.exc_info and "a bug" in str(record.exc_info[1])


def test_an_unknown_path_and_a_wrong_method_answer_in_the_error_shape(client: TestClient) -> None:
    unknown = assert_error(client.get("/no/such/path"), 404, "not_found")
    wrong = client.get("/sentiment")
    assert (unknown["message"], assert_error(wrong, 405, "method_not_allowed")["message"]) == \
        ("Not Found", "Method Not Allowed")
    assert wrong.headers["allow"] == "POST"  # RFC 9110: a 405 names the methods the resource takes


def test_every_response_carries_a_request_id_and_echoes_a_safe_one(client: TestClient) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz").headers["x-request-id"])
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    hostile = client.get("/healthz", headers={"X-Request-ID": "a b\tc<script>"}).headers["x-request-id"]
    assert hostile != "a b\tc<script>"


def test_openapi_documents_every_status_of_each_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    image_statuses = set(paths["/classify-image"]["post"]["responses"])
    assert {"200", "400", "404", "413", "415", "422", "500", "503", "504"} <= image_statuses
    sentiment_statuses = set(paths["/sentiment"]["post"]["responses"])
    assert {"200", "400", "404", "413", "415", "422", "500", "503", "504"} <= sentiment_statuses
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert "404" in paths["/models/{name}"]["get"]["responses"]
    assert "multipart/form-data" in paths["/classify-image"]["post"]["requestBody"]["content"]
    # Each error status says when it happens and which shape its body has: the protocol's own on /v2.
    not_found = paths["/v2/models/{name}/infer"]["post"]["responses"]["404"]
    assert not_found["description"] == "No such model or version."
    assert not_found["content"]["application/json"]["schema"]["$ref"].endswith("/ProtocolErrorResponse")
    assert client.get("/docs").status_code == 200
