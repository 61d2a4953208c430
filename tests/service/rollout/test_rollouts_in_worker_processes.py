"""SERVICE_WORKERS=2: a policy written once reaches both processes, and so does a rollback one of them decides."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from loadtests.server import running_service
from service.rollout.policy import PolicyStore
from tests.service.rollout.conftest import MODEL

pytestmark = pytest.mark.live  # real `python -m service` processes

INTERVAL_S = 0.2


def _every_process(base_url: str, tries: int = 40) -> dict[int, dict]:  # type: ignore[type-arg]
    """The rollout as each worker process reports it (new connections, which the kernel spreads over both)."""
    seen: dict[int, dict] = {}  # type: ignore[type-arg]
    for _ in range(tries):
        with httpx.Client(base_url=base_url) as fresh:
            rollout = fresh.get(f"/models/{MODEL}/rollout").json()
        seen[rollout["process"]] = rollout
    return seen


def _until_both(base_url: str, condition, what: str, timeout_s: float = 30) -> dict[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    deadline = time.monotonic() + timeout_s
    while True:
        seen = _every_process(base_url)
        if len(seen) == 2 and all(condition(rollout) for rollout in seen.values()):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not both processes {what}: {seen}")
        time.sleep(INTERVAL_S)


def test_a_policy_and_a_rollback_reach_both_worker_processes(artifacts: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "rollouts"
    with running_service(artifacts, tmp_path / "service.log", workers="2", default_sentiment_model=MODEL,
                         rollout_dir=str(rollouts), reload_interval_s=str(INTERVAL_S)) as service:
        _until_both(service.base_url, lambda r: r["state"] == "no policy", "without a policy")
        # The hostile candidate (its card swaps the labels) in canary for every request: its labels drift
        # from stable's, so whichever process first has enough answers rolls it back, for both.
        command = [sys.executable, "-m", "service.rollout", MODEL, "--artifacts-dir", str(artifacts),
                   "--rollout-dir", str(rollouts), "--stable", "1", "--candidate", "3", "--mode", "canary",
                   "--weight", "0.5", "--gate", "min_requests=20", "--gate", "max_p99_ratio=off",
                   "--gate", "max_drift_vs_reference=off"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        _until_both(service.base_url, lambda r: r["state"] == "canary" and r["policy"]["revision"] == 1,
                    "in canary")
        statuses = []
        deadline = time.monotonic() + 60
        while PolicyStore(rollouts).read(MODEL).rollback is None:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no rollback"
            with httpx.Client(base_url=service.base_url) as fresh:
                statuses.append(fresh.post("/sentiment", json={"text": f"good {len(statuses)}"}).status_code)
        assert set(statuses) == {200}
        seen = _until_both(service.base_url, lambda r: r["state"] == "rolled back", "rolled back")
        assert {r["policy"]["revision"] for r in seen.values()} == {2}
        with httpx.Client(base_url=service.base_url) as fresh:
            assert {fresh.post("/sentiment", json={"text": "good"}).json()["version"] for _ in range(10)} == {1}
