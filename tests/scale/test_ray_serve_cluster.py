"""The service on Ray Serve across a real two-node loopback cluster, under load, through HAProxy.

One cluster (head 127.0.0.2, worker 127.0.0.3) and one deployment of `python -m service.ray_serve`
serve the whole module, with the tiny test models and autoscaling delays shortened to seconds,
through `make serve-ray`'s default ingress: HAProxy, with Ray's throughput-optimised mode. The tests
run in file order: both nodes answer (with the replica and request headers), a new version is
hot-reloaded everywhere, a killed replica is replaced, the deployment scales up under a load step and
back down after it, an overloaded replica's 503 reaches the client whole, and the replicas log the
service's own lines (one access line per request, not a second one of Ray's).
(test_ray_serve_classic_proxy.py runs the first and last of these through Ray's classic proxy.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.scale.cluster import (
    HEAD_IP,
    WORKER_IP,
    Cluster,
    Deployment,
    process_title,
    rss_mib,
    served,
    session_processes,
    two_node_cluster,
)
from tests.scale.conftest import FIGURES
from tests.scale.ingress import check_headers_of_an_answer, check_overloaded_answer
from tests.tiny_models import build_image_model, build_text_model, expected_positive

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "bench-results" / "scale"
MIN_REPLICAS, MAX_REPLICAS = 2, 4
# The autoscaling target is SERVICE_MAX_BATCH_SIZE ongoing requests per replica: 1 here, so that the
# load step below asks for well over the maximum of replicas and the autoscaler does not hover
# between 3 and 4 (as it did with a target of 2 on this 2-core machine).
MAX_BATCH_SIZE = 1
SETTINGS = {
    "SERVICE_DEFAULT_SENTIMENT_MODEL": "tiny-text",
    "SERVICE_MAX_BATCH_SIZE": str(MAX_BATCH_SIZE),
    "SERVICE_QUEUE_LIMIT": "64",
    "SERVICE_RELOAD_INTERVAL_S": "1",
    "SERVICE_SHUTDOWN_GRACE_S": "10",
}
FLAGS = ["--min-replicas", str(MIN_REPLICAS), "--max-replicas", str(MAX_REPLICAS), "--cpus-per-replica", "0.5",
         "--upscale-delay-s", "1", "--downscale-delay-s", "3", "--look-back-period-s", "2"]

pytestmark = pytest.mark.timeout(300)


# -- the cluster and the deployment -----------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="scale-models-"))
    build_image_model(root / "models" / "tiny-image" / "1")
    build_text_model(root / "models" / "tiny-text" / "1")
    build_text_model(root / "models" / "tiny-text" / "2")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    LOGS.mkdir(parents=True, exist_ok=True)
    # Short: Ray puts Unix sockets under it, and their paths are limited to 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
    started: list[int] = []
    try:
        with two_node_cluster(temp_dir, LOGS) as running:
            started = [node.process.pid for node in running.nodes]
            yield running
    finally:
        left = [pid for session in started for pid in session_processes(session)]
        # Keep Serve's own logs (controller, proxy, replicas) next to the test's for a post-mortem.
        serve_logs = temp_dir / "session_latest" / "logs" / "serve"
        if serve_logs.is_dir():
            shutil.rmtree(LOGS / "serve-logs", ignore_errors=True)
            shutil.copytree(serve_logs, LOGS / "serve-logs")
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert left == [], f"processes left after the teardown: {left}"


@pytest.fixture(scope="module")
def deployment(cluster: Cluster, artifacts: Path) -> Iterator[Deployment]:
    settings = SETTINGS | {"SERVICE_ARTIFACTS_DIR": str(artifacts / "models")}
    with served(cluster, LOGS / "service-ray-serve.log", settings, FLAGS) as running:
        yield running
    assert running.process.returncode == 0, (LOGS / "service-ray-serve.log").read_text()[-3000:]


# -- load -------------------------------------------------------------------------------------


@dataclass
class Answer:
    started: float
    ended: float
    status: int | str
    replica: str | None
    node: str | None
    version: int | None
    detail: str = ""  # a failed answer's body, or the client's error, shortened: who answered it and why


@dataclass
class Load:
    """Clients sending one text per request, each as fast as it is answered, until stopped."""

    url: str
    clients: int
    text: str = "good good bad"
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = http.post("/sentiment", json={"text": self.text})
                    status: int | str = response.status_code
                    version = response.json().get("version") if status == 200 else None
                    if status == 200:
                        # The tiny model's answer depends on the text and on the version that gave it: an
                        # answer meant for another text, or labelled with the wrong version, would differ.
                        positive = response.json()["results"][0]["probabilities"]["positive"]
                        expected = expected_positive(self.text, int(version))
                        status = status if abs(positive - expected) < 1e-5 else "wrong answer"
                    answer = Answer(started, time.monotonic(), status, response.headers.get("x-replica"),
                                    response.headers.get("x-replica-node"), version,
                                    "" if status == 200 else response.text[:160])
                except httpx.HTTPError as exc:
                    answer = Answer(started, time.monotonic(), type(exc).__name__, None, None, None, str(exc)[:160])
                self.answers.append(answer)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)

    def failed(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 200]

    def since(self, moment: float) -> list[Answer]:
        return [answer for answer in self.answers if answer.started >= moment]


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.2,
             state: Callable[[], Any] | None = None) -> float:
    """Seconds until `condition()` is true; fails the test with `what` (and `state()`, what was seen
    at that moment, for a post-mortem) after `timeout_s`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s} s" + (f"; seen: {state()}" if state else ""))
        time.sleep(poll_s)
    return time.monotonic() - start


def replica_processes(cluster: Cluster) -> dict[int, str]:
    """Every replica process of the cluster (starting, serving or stopping) -> its node."""
    return {pid: node.ip for node in cluster.nodes for pid in node.replica_pids()}


def memory(cluster: Cluster) -> dict[str, Any]:
    """Resident memory (MiB) of each node's Ray processes and of each replica."""
    figures: dict[str, Any] = {}
    for node in cluster.nodes:
        processes: dict[str, float] = {}
        for pid in node.processes():
            try:
                title = process_title(pid)
                if not title.startswith("ray::ServeReplica:"):
                    processes[f"{_short_name(title)} ({pid})"] = round(rss_mib(pid), 1)
            except OSError:
                continue
        figures[f"node {node.ip} without replicas, MiB"] = round(sum(processes.values()), 1)
        figures[f"node {node.ip} processes, MiB"] = processes
    replicas = replica_processes(cluster)
    figures["replicas, MiB"] = {f"{pid} on {ip}": round(rss_mib(pid), 1) for pid, ip in replicas.items()}
    return figures


def autoscaler_decisions(cluster: Cluster, since_epoch: float) -> list[tuple[float, str]]:
    """(seconds after `since_epoch`, line) for each up- or downscaling decision in the controller's log."""
    decisions = []
    for log in (cluster.temp_dir / "session_latest" / "logs" / "serve").glob("controller_*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "Upscaling" in line or "Downscaling" in line:
                stamp = datetime.strptime(" ".join(line.split()[1:3]), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                if stamp >= since_epoch:
                    decisions.append((round(stamp - since_epoch, 1), line.split(" -- ", 1)[-1][:90]))
    return sorted(decisions)


def _short_name(title: str) -> str:
    """`ray::ProxyActor`, `raylet`, or for a Python process the script it runs (`ray start`, `monitor.py`)."""
    words = title.split()
    if words[0].startswith("ray::"):
        return words[0]
    if Path(words[0]).name.startswith("python") and len(words) > 1:
        script = next((w for w in words[1:] if not w.startswith("-")), words[1])
        return Path(script).name + (" " + words[2] if Path(script).name == "ray" and len(words) > 2 else "")
    return Path(words[0]).name


# -- the tests --------------------------------------------------------------------------------


def test_replicas_on_both_nodes_answer(cluster: Cluster, deployment: Deployment) -> None:
    with httpx.Client(base_url=deployment.url, timeout=10) as http:
        nodes: dict[str, set[str]] = {}

        def both_nodes_answered() -> bool:
            response = http.post("/sentiment", json={"text": "good good"})
            assert response.status_code == 200, response.text
            nodes.setdefault(response.headers["x-replica-node"], set()).add(response.headers["x-replica"])
            return set(nodes) == {HEAD_IP, WORKER_IP}

        waited = wait_for(both_nodes_answered, 120, "answers from replicas on both nodes", poll_s=0.05)
        assert http.get("/readyz").status_code == 200
        assert http.get("/models").status_code == 200
        image = http.post("/classify-image", files={"file": ("red.png", _red_png(), "image/png")})
        assert image.status_code == 200 and image.json()["results"][0]["label"] == "red"
    check_headers_of_an_answer(deployment.url)
    assert len(cluster.nodes[0].haproxy_pids()) >= 1  # the head's HAProxy is the ingress
    assert len(replica_processes(cluster)) == MIN_REPLICAS
    FIGURES["both nodes answering, s after /readyz"] = round(waited, 1)
    FIGURES["memory at rest"] = memory(cluster)


def test_a_new_version_reaches_every_replica_with_no_failed_request(
    cluster: Cluster, deployment: Deployment, artifacts: Path
) -> None:
    staging = artifacts / "staging" / "tiny-text" / "3"
    build_text_model(staging)
    with Load(deployment.url, clients=4) as load:
        time.sleep(2)
        # The documented way to publish: the folder appears whole, by a rename on the same filesystem.
        os.rename(staging, artifacts / "models" / "tiny-text" / "3")

        def every_replica_serves_v3() -> bool:
            recent = [a for a in load.since(time.monotonic() - 2) if a.replica]
            latest = {a.replica: a.version for a in recent}
            return len(latest) >= len(replica_processes(cluster)) and set(latest.values()) == {3}

        waited = wait_for(every_replica_serves_v3, 60, "version 3 answering from every replica")
        time.sleep(1)
    replicas_on_v3 = {a.replica for a in load.answers if a.version == 3}
    FIGURES["hot reload"] = {"requests": len(load.answers), "failed": len(load.failed()),
                             "every replica on v3 after, s": round(waited, 1), "replicas": len(replicas_on_v3)}
    assert load.failed() == []
    assert len(replicas_on_v3) >= MIN_REPLICAS
    # Once a replica had answered with v3 it never went back to v2 (it swapped, it did not flap): every
    # request sent after its first v3 answer came back got v3. (A request sent before that, already
    # taken by v2, may still come back after it: versions share the model threads, so by completion
    # order alone a replica could seem to go back.)
    for replica in replicas_on_v3:
        first_v3 = min(a.ended for a in load.answers if a.replica == replica and a.version == 3)
        later = {a.version for a in load.answers if a.replica == replica and a.started > first_v3}
        assert later == {3}, (replica, later)


def test_a_killed_replica_is_replaced_and_only_its_in_flight_requests_fail(
    cluster: Cluster, deployment: Deployment
) -> None:
    clients = 8
    with Load(deployment.url, clients=clients) as load:
        wait_for(lambda: {a.node for a in load.answers[-40:]} == {HEAD_IP, WORKER_IP}, 30,
                 "steady load on both nodes")
        before = {a.replica for a in load.answers if a.replica}
        (victim, *_) = [pid for pid, ip in replica_processes(cluster).items() if ip == WORKER_IP]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for(lambda: any(a.replica not in before for a in load.since(killed) if a.replica), 120,
                            "an answer from a replacement replica")
        wait_for(lambda: len(replica_processes(cluster)) >= MIN_REPLICAS, 30, "the replica count restored")
        time.sleep(2)
    failed = load.failed()
    FIGURES["replica killed under load"] = {
        "clients": clients, "requests": len(load.answers), "failed": len(failed),
        "failed statuses": sorted({str(a.status) for a in failed}),
        "failed answers": sorted({f"{a.status}: {a.detail}" for a in failed}),
        "failed, s after the kill": sorted(round(a.started - killed, 3) for a in failed),
        "replacement answering after, s": round(replaced, 1),
    }
    # Only requests already in flight when the replica died may fail: each client has one request in
    # flight at a time, so at most `clients`, and each one started before the kill. Under HAProxy a few
    # requests sent just after the kill fail too (2-19 ms after it, in the runs here): HAProxy learns
    # of the death from its traffic, and Ray has it retry only a connection that failed to open, not
    # a request already sent to the replica. They are bounded by HAProxy's connections to the victim
    # (one per client at most) and all come before the replacement answered. A failed request is either a
    # connection closed without an answer or, in some runs, HAProxy's answer to a replica gone mid-request
    # (its 502, which Ray's HAProxy configuration turns into a plain-text 500): the figures list each kind.
    in_flight = [a for a in failed if a.started <= killed]
    assert len(in_flight) <= clients
    if cluster.proxy == "haproxy":
        assert len(failed) <= 2 * clients
        assert all(a.started < killed + replaced for a in failed)
    else:
        assert failed == in_flight, [(round(a.started - killed, 3), a.status) for a in failed]
    assert not [a for a in load.answers if a.status == "wrong answer"]


@pytest.mark.timeout(480)  # the waits below add up to over 300 s at worst
def test_scales_up_under_a_load_step_and_down_after_it_with_no_failed_request(
    cluster: Cluster, deployment: Deployment
) -> None:
    wait_for(lambda: len(replica_processes(cluster)) == MIN_REPLICAS, 60, "back at the minimum of replicas")
    step_clients = 12
    step_epoch = time.time()
    with Load(deployment.url, clients=step_clients) as step:
        started = time.monotonic()

        def scaled_up() -> bool:
            answering = {a.replica for a in step.since(time.monotonic() - 2) if a.replica}
            return len(answering) == MAX_REPLICAS

        def seen() -> dict[str, Any]:
            return {"replica processes": replica_processes(cluster),
                    "replicas answering in the last 10 s": sorted({a.replica for a in step.since(time.monotonic() - 10)
                                                                   if a.replica}),
                    "requests": len(step.answers), "failed": len(step.failed()),
                    "autoscaler decisions": autoscaler_decisions(cluster, step_epoch)}

        # A new replica imports TensorFlow and loads its models while 12 clients keep both cores busy:
        # about 30 s here, but CI's machine once took over 120 s, so the wait is generous and a
        # failure says what the autoscaler had decided by then.
        up = wait_for(scaled_up, 240, f"{MAX_REPLICAS} replicas answering under load", state=seen)
        peak_memory = memory(cluster)
        time.sleep(2)
    step_end = time.monotonic()
    # A light load goes on while the extra replicas are removed: none of it may fail.
    with Load(deployment.url, clients=1) as light:
        down = wait_for(lambda: len(replica_processes(cluster)) == MIN_REPLICAS, 120,
                        f"back down to {MIN_REPLICAS} replica processes")
        time.sleep(1)
    FIGURES["scaling"] = {
        "load step clients": step_clients, "target ongoing requests per replica": MAX_BATCH_SIZE,
        "upscale_delay_s": 1, "downscale_delay_s": 3,
        f"{MIN_REPLICAS} -> {MAX_REPLICAS} replicas answering after, s": round(up, 1),
        f"back to {MIN_REPLICAS} replica processes after the step, s": round(down, 1),
        "step requests": len(step.answers), "step failed": len(step.failed()),
        "requests during scale-down": len(light.answers), "failed during scale-down": len(light.failed()),
        "step ended at, s": round(step_end - started, 1),
        "autoscaler decisions (s after the step began)": autoscaler_decisions(cluster, step_epoch),
    }
    FIGURES["memory at the peak"] = peak_memory
    assert started < step_end
    assert step.failed() == []
    assert light.failed() == [] and len(light.answers) > 0


def test_an_overloaded_replica_answers_503_with_retry_after_through_the_ingress(deployment: Deployment) -> None:
    refused = check_overloaded_answer(deployment.url)
    FIGURES["overloaded replica's answer"] = {"status": refused.status_code,
                                              "retry-after": refused.headers["retry-after"]}


def test_the_replicas_log_the_services_lines_and_ray_no_second_access_line(cluster: Cluster) -> None:
    logs = cluster.temp_dir / "session_latest" / "logs"
    # A replica's stderr (Ray's worker-*.err): the service's own lines.
    stderr = "".join(path.read_text(errors="replace") for path in logs.glob("worker-*.err"))
    assert " INFO service.runtimes " in stderr and " runs on tensorflow" in stderr  # the choice, at load
    assert "method=POST route=/sentiment model=tiny-text status=200" in stderr  # an access line per request
    # Ray's replica logs: no access line of Ray's. Its throughput-optimised mode writes them in blocks
    # of 1,000 lines, and the tests above sent thousands of requests, so lines of it would be there.
    replica_logs = [path.read_text() for path in (logs / "serve").glob("replica_*.log")]
    assert replica_logs and not any(re.search(r" -- (GET|POST) /\S* \d{3} ", text) for text in replica_logs)


def _red_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()
