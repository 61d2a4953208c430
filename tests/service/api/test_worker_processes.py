"""SERVICE_WORKERS=2: two processes on one port, one readiness, one set of metrics."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from loadtests.server import running_service

pytestmark = pytest.mark.live  # real `python -m service` processes


def _children(pid: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        children = [int(child) for child in handle.read().split()]
    workers = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except FileNotFoundError:  # it has just exited
            continue
    return workers


def _readiness(base_url: str) -> int:
    """/readyz on a new connection, which the kernel gives to a process that is still accepting."""
    with httpx.Client(base_url=base_url) as fresh:
        return fresh.get("/readyz").status_code


def _wait_for(predicate, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.2)


def test_two_workers_answer_together_and_are_ready_only_together(artifacts_dir: Path, tmp_path: Path) -> None:
    with (
        running_service(artifacts_dir, tmp_path / "service.log", workers="2", default_sentiment_model="tiny-text")
        as service,
        httpx.Client(base_url=service.base_url) as http,
    ):
        workers = _children(service.process.pid)
        assert len(workers) == 2

        for _ in range(40):  # new connections each time, so the kernel spreads them over both processes
            with httpx.Client(base_url=service.base_url) as fresh:
                assert fresh.post("/sentiment", json={"text": "good"}).json()["results"][0]["label"] == "positive"
        metrics = http.get("/metrics").text
        answered = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith('service_requests_total{') and 'route="/sentiment"' in line)
        assert answered == 40  # the counts of both processes, added up

        # One worker stops: it drains and stops accepting, and the other one, which now gets every new
        # connection, says not ready ...
        os.kill(workers[0], signal.SIGTERM)
        _wait_for(lambda: _readiness(service.base_url) == 503, 30)
        # ... until the supervisor's replacement has loaded and warmed its models.
        _wait_for(lambda: len(_children(service.process.pid)) == 2 and workers[0] not in _children(service.process.pid))
        _wait_for(lambda: all(_readiness(service.base_url) == 200 for _ in range(4)))
