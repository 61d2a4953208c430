"""SIGTERM on a real server under load: accepted requests are all answered, then it exits."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

from loadtests.server import running_service


def test_sigterm_answers_every_accepted_request_then_exits_within_the_grace_period(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    overrides = {"default_sentiment_model": "tiny-text", "shutdown_grace_s": "20"}
    with running_service(artifacts_dir, log_path, **overrides) as service:

        def post(text: str) -> int | str:
            with httpx.Client(base_url=service.base_url, timeout=30) as http:
                try:
                    response = http.post("/sentiment", json={"text": text})
                except httpx.ConnectError:
                    return "refused"  # never accepted: the server had stopped listening
                if response.status_code == 503 and response.json()["error"]["code"] == "unavailable":
                    return "refused"  # arrived after SIGTERM: refused, with Retry-After
                return response.status_code

        def queued() -> float:
            metrics = httpx.get(f"{service.base_url}/metrics").text
            return sum(float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith('service_batch_queue_depth{model="tiny-text"'))

        with ThreadPoolExecutor(max_workers=25) as pool:
            # "slow" keeps the model busy for about a second; the others queue up behind it.
            futures = [pool.submit(post, "slow")] + [pool.submit(post, "good " * i) for i in range(24)]
            deadline = time.monotonic() + 10
            while queued() < 12 and time.monotonic() < deadline:
                time.sleep(0.02)
            service.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            statuses = [future.result() for future in futures]
        exit_code = service.process.wait(timeout=30)
        exited_after = time.monotonic() - signalled
        try:
            httpx.get(f"{service.base_url}/readyz", timeout=2)
            refused = False
        except httpx.TransportError:
            refused = True
    # At least the 12 requests seen queued before SIGTERM were answered, and nothing was lost.
    assert statuses.count(200) >= 12 and set(statuses) <= {200, "refused"}, statuses
    assert exit_code in (0, -signal.SIGTERM) and exited_after < 20
    assert refused  # no new connections once it stopped
    assert "Application shutdown complete" in log_path.read_text()
