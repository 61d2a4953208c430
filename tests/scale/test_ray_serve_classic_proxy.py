"""`--proxy classic`: the service on the two-node loopback cluster through Ray Serve's Python proxy.

HAProxy is the default (test_ray_serve_cluster.py runs everything through it); this short module
keeps the classic proxy working: replicas on both nodes answer, with the replica and request
headers, and an overloaded replica's 503 with Retry-After reaches the client.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.scale.cluster import HEAD_IP, WORKER_IP, Cluster, Deployment, served, session_processes, two_node_cluster
from tests.scale.conftest import FIGURES
from tests.scale.ingress import check_headers_of_an_answer, check_overloaded_answer
from tests.tiny_models import build_text_model

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "bench-results" / "scale" / "classic-proxy"
SETTINGS = {
    "SERVICE_DEFAULT_SENTIMENT_MODEL": "tiny-text",
    "SERVICE_MAX_BATCH_SIZE": "1",  # one text per model call: a full request keeps the queue full longest
    "SERVICE_QUEUE_LIMIT": "64",
    "SERVICE_SHUTDOWN_GRACE_S": "5",
}
# Two replicas, one per node, and no autoscaling to wait for.
FLAGS = ["--min-replicas", "2", "--max-replicas", "2", "--cpus-per-replica", "1"]

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    LOGS.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))  # short: Ray's Unix socket paths are limited
    started: list[int] = []
    try:
        with two_node_cluster(temp_dir, LOGS, cpus_per_node=1, proxy="classic") as running:
            started = [node.process.pid for node in running.nodes]
            yield running
    finally:
        left = [pid for session in started for pid in session_processes(session)]
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert left == [], f"processes left after the teardown: {left}"


@pytest.fixture(scope="module")
def deployment(cluster: Cluster) -> Iterator[Deployment]:
    models = Path(tempfile.mkdtemp(prefix="scale-classic-models-"))
    build_text_model(models / "tiny-text" / "1")
    settings = SETTINGS | {"SERVICE_ARTIFACTS_DIR": str(models)}
    try:
        with served(cluster, LOGS / "service-ray-serve.log", settings, FLAGS) as running:
            yield running
    finally:
        shutil.rmtree(models, ignore_errors=True)
    assert running.process.returncode == 0, (LOGS / "service-ray-serve.log").read_text()[-3000:]


def test_replicas_on_both_nodes_answer_through_the_classic_proxy(cluster: Cluster, deployment: Deployment) -> None:
    assert [node.haproxy_pids() for node in cluster.nodes] == [[], []]  # the classic proxy answers alone
    nodes: set[str] = set()
    with httpx.Client(base_url=deployment.url, timeout=10) as http:
        # The classic proxy prefers no node here (RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING=0) and picks
        # between the replicas at random, but the second one may still be loading its models when the
        # first answers (CI once saw 400 answers from the head alone): ask until both have answered.
        deadline = time.monotonic() + 120
        while nodes != {HEAD_IP, WORKER_IP} and time.monotonic() < deadline:
            response = http.post("/sentiment", json={"text": "good good"})
            assert response.status_code == 200, response.text
            nodes.add(response.headers["x-replica-node"])
    assert nodes == {HEAD_IP, WORKER_IP}
    check_headers_of_an_answer(deployment.url)


def test_an_overloaded_replica_answers_503_with_retry_after_through_the_classic_proxy(deployment: Deployment) -> None:
    refused = check_overloaded_answer(deployment.url)
    FIGURES["classic proxy: overloaded replica's answer"] = {"status": refused.status_code,
                                                             "retry-after": refused.headers["retry-after"]}

