"""The payload log in the app: /sentiment and /classify-image answers land in it, under the ids the client saw."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

from service.app import create_app
from service.settings import Settings
from tests.service.images import solid
from tests.tiny_models import expected_positive


def records_in(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_bytes().splitlines()]


def test_answers_are_logged_with_the_request_id_of_the_response(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = tmp_path / "payloads"
    app = create_app(make_settings(payload_log_dir=folder, payload_log_images=True))
    with TestClient(app) as client:
        texts = client.post("/sentiment", json={"texts": ["good good", "bad", "good film"]})
        chosen = client.post("/sentiment", json={"text": "good"}, headers={"X-Request-ID": "client-chose-this"})
        files = [("file", ("r.png", solid("red"), "image/png")), ("file", ("b.png", solid("blue"), "image/png"))]
        images = client.post("/classify-image?top_k=1", files=files)
        refused = client.post("/sentiment", json={"texts": []})
    assert [r.status_code for r in (texts, chosen, images, refused)] == [200, 200, 200, 422]
    # leaving the client ran the lifespan's end, which writes what was queued
    records = records_in(folder)
    by_request: dict[str, list[dict]] = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(record)
    assert set(by_request) == {texts.headers["x-request-id"], "client-chose-this", images.headers["x-request-id"]}

    logged_texts = by_request[texts.headers["x-request-id"]]
    assert [(r["index"], r["text"]) for r in logged_texts] == [(0, "good good"), (1, "bad"), (2, "good film")]
    for record, answer in zip(logged_texts, texts.json()["results"], strict=True):
        assert (record["model"], record["version"], record["task"]) == ("tiny-text", 2, "text-classification")
        assert record["prediction"] == answer["label"]
        assert record["probabilities"]["positive"] == pytest.approx(expected_positive(record["text"], 2), abs=1e-5)
        assert record["trace_id"] is None  # tracing is off

    red, blue = by_request[images.headers["x-request-id"]]
    assert (red["filename"], red["prediction"], blue["prediction"]) == ("r.png", "red", "blue")
    assert base64.b64decode(red["image_base64"]) == solid("red")
    assert set(red["probabilities"]) == {"red", "green", "blue"}  # every class, though top_k was 1
    assert app.state.metrics.registry.get_sample_value("service_payload_log_records_total") == 6


def test_with_tracing_on_a_record_carries_the_trace_id_of_the_response(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = create_app(make_settings(payload_log_dir=tmp_path), tracer_provider=TracerProvider())
    with TestClient(app) as client:
        response = client.post("/sentiment", json={"text": "good"})
    [record] = records_in(tmp_path)
    assert record["trace_id"] == response.headers["x-trace-id"] and len(record["trace_id"]) == 32
