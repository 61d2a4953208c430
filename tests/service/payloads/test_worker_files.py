"""SERVICE_WORKERS=2 with the payload log: a file per process, and stopping writes what was queued."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
import pytest

from loadtests.server import running_service
from tests.service.api.test_worker_processes import _children

pytestmark = pytest.mark.live  # real `python -m service` processes (live tests are slow ones too)


def test_each_worker_process_writes_its_own_file(artifacts_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "payloads"
    with running_service(artifacts_dir, tmp_path / "service.log", workers="2", default_sentiment_model="tiny-text",
                         payload_log_dir=str(folder)) as service:
        workers = _children(service.process.pid)
        ids = []
        for i in range(40):  # new connections each time, so the kernel spreads them over both processes
            with httpx.Client(base_url=service.base_url) as fresh:
                ids.append(fresh.post("/sentiment", json={"text": f"good {i}"}).headers["x-request-id"])
    # stopping the service ended each worker's lifespan, which wrote what its log still had queued
    files = sorted(folder.glob("*.jsonl"))
    assert sorted(path.name for path in files) == sorted(f"payloads-{pid}.jsonl" for pid in workers)
    records = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert sorted(record["request_id"] for record in records) == sorted(ids)
    assert all(path.stat().st_size > 0 for path in files)  # both processes answered some
