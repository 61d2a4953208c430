"""End to end: a real uvicorn process on 127.0.0.1, real HTTP, then a clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx2 as httpx
import pytest

from loadtests.server import running_service
from tests.service.images import solid

pytestmark = pytest.mark.live  # a real `python -m service` process


def test_the_real_server_answers_both_endpoints_logs_each_request_and_stops_cleanly(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    with running_service(artifacts_dir, log_path, default_sentiment_model="tiny-text") as service:
        process = service.process
        with httpx.Client(base_url=service.base_url, timeout=10) as http:
            sentiment = http.post("/sentiment", json={"texts": ["good good", "bad"]}, headers={"X-Request-ID": "e2e-1"})
            image = http.post("/classify-image", files=[("file", ("b.png", solid("blue"), "image/png"))])
            metrics = http.get("/metrics").text
        assert [r["label"] for r in sentiment.json()["results"]] == ["positive", "negative"]
        assert image.json()["results"][0]["label"] == "blue"
        assert 'service_requests_total{model="tiny-image",route="/classify-image",status="200"} 1.0' in metrics
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status reports it.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    log = log_path.read_text()
    assert "Application shutdown complete" in log
    line = next(line for line in log.splitlines() if "request_id=e2e-1" in line)
    for field in ("route=/sentiment", "model=tiny-text", "status=200", "latency_ms=", "batch_size="):
        assert field in line
    assert "good good" not in log  # texts are never logged


def test_a_malformed_artifact_stops_start_up_with_a_message_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "broken" / "1").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="exited") as error, running_service(tmp_path, tmp_path / "service.log"):
        pass
    assert f"{tmp_path}/broken/1: no model card" in str(error.value)
