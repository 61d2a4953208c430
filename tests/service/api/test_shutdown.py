"""SIGTERM on a real `python -m service`: what was queued is answered, what comes later is refused.

Each live test checks first that there was something to drain (requests queued or in flight when
the signal went), so that it cannot pass on an idle server. The in-process tests of `python -m service`
check what it asks uvicorn for (the grace period above all), where mutation testing can see them.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from uvicorn.importer import import_from_string

import service.__main__ as entry_point
from loadtests.server import RunningService, running_service
from service.app import create_app, drain_on_stop_signals
from service.core.workers import SHARED_DIR_ENV, tensorflow_threads
from service.settings import Settings
from tests.service.api.live_http import NoAnswer, Reply, connect, post_json, read_reply
from tests.tiny_models import expected_positive

TF_THREAD_VARIABLES = tuple(tensorflow_threads(1))  # their names: intra-op, then inter-op

SERVED_VERSION = 2  # the session's tiny-text serves version 2


def queued(service: RunningService) -> float:
    metrics = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith('service_batch_queue_depth{model="tiny-text"'))


def wait_for_queue(service: RunningService, at_least: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while (depth := queued(service)) < at_least:
        assert time.monotonic() < deadline, f"only {depth} inputs ever queued: there would be nothing to drain"
        time.sleep(0.02)


def wait_for_log(service: RunningService, text: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in service.log_path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never appeared in the log"
        time.sleep(0.01)


def refuses_connections(service: RunningService) -> bool:
    try:
        connect(service.base_url, timeout_s=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_the_stop_signal_handler_starts_the_drain_before_uvicorn_shuts_down(
    make_settings: Callable[..., Settings],
) -> None:
    """The app chains its drain before whatever stop handler the server installed (uvicorn's handle_exit)."""
    app = create_app(make_settings())
    registry = app.state.registry
    handed_over: list[int] = []
    saved = {stop: signal.getsignal(stop) for stop in (signal.SIGTERM, signal.SIGINT)}
    try:
        for stop in saved:
            signal.signal(stop, lambda signum, frame: handed_over.append(signum))  # stands in for uvicorn's
        drain_on_stop_signals(registry.begin_draining)
        assert not registry.draining
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        assert registry.draining
        assert handed_over == [signal.SIGTERM]  # and the server's own shutdown goes on
    finally:
        for stop, handler in saved.items():
            signal.signal(stop, handler)


# -- python -m service, in process: uvicorn is replaced by a stand-in that records how it was asked to run -----


class UvicornRun:
    """Stands in for uvicorn.run: records its arguments and the environment the workers would inherit."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.environ: dict[str, str] = {}
        self.shared_dir_existed = False

    def __call__(self, app: str, **options: Any) -> None:
        self.calls.append((app, options))
        self.environ = dict(os.environ)
        self.shared_dir_existed = SHARED_DIR_ENV in os.environ and Path(os.environ[SHARED_DIR_ENV]).is_dir()


@pytest.fixture
def uvicorn_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[UvicornRun]:
    """main() sets variables for the worker processes, as in a fresh process: the environment is put back."""
    run = UvicornRun()
    monkeypatch.setattr(entry_point.uvicorn, "run", run)
    environ = dict(os.environ)
    for variable in (SHARED_DIR_ENV, *TF_THREAD_VARIABLES):
        os.environ.pop(variable, None)
    try:
        yield run
    finally:
        os.environ.clear()
        os.environ.update(environ)


@contextmanager
def fresh_root_logger() -> Iterator[None]:
    """The root logger as a new process has it (no handler: pytest's own are set aside), put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers, root.level = [], logging.WARNING
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level


def test_python_m_service_serves_the_app_on_the_configured_address_with_the_configured_grace_and_log_level(
    uvicorn_run: UvicornRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {"HOST": "0.0.0.0", "PORT": "8123", "SHUTDOWN_GRACE_S": "7", "LOG_LEVEL": "error"}.items():
        monkeypatch.setenv(f"SERVICE_{name}", value)
    with fresh_root_logger():
        entry_point.main()
        logging.getLogger("service.registry").warning("below the level")
        logging.getLogger("service.registry").error("at the level")
    lines = [line for line in capsys.readouterr().err.splitlines() if "the level" in line]
    assert len(lines) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR service.registry at the level",
                                            lines[0]), lines
    [(target, options)] = uvicorn_run.calls
    assert options["factory"] is True  # uvicorn builds the app by calling the target, as each worker does
    assert TestClient(import_from_string(target)()).get("/healthz").json() == {"status": "ok"}
    assert {key: options.get(key) for key in ("host", "port", "workers", "log_level", "timeout_graceful_shutdown")} \
        == {"host": "0.0.0.0", "port": 8123, "workers": 1, "log_level": "error", "timeout_graceful_shutdown": 7}
    assert options["access_log"] is False  # the service logs one line per request itself; uvicorn's would double it
    # One process: no shared folder (it would switch /metrics to multi-process mode).
    assert SHARED_DIR_ENV not in uvicorn_run.environ


@pytest.mark.parametrize(("cores", "workers", "intra_op", "inter_op"),
                         [(2, 1, "1", "2"), (8, 1, "7", "8"), (8, 2, "3", "4"), (2, 4, "1", "1"), (1, 1, "1", "1")])
def test_python_m_service_shares_the_cores_out_leaving_one_to_each_event_loop(
    uvicorn_run: UvicornRun, monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, intra_op: str, inter_op: str
) -> None:
    monkeypatch.setenv("SERVICE_WORKERS", str(workers))
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    entry_point.main()
    [(_, options)] = uvicorn_run.calls
    assert options["workers"] == workers
    # Each process's TensorFlow gets its share of the cores, not all of them, and splits an op over
    # one thread fewer than its share: the other is its event loop's.
    assert [uvicorn_run.environ[v] for v in TF_THREAD_VARIABLES] == [intra_op, inter_op]
    if workers > 1:
        assert uvicorn_run.shared_dir_existed
        assert not Path(uvicorn_run.environ[SHARED_DIR_ENV]).exists()  # removed once the server has stopped


def test_explicit_tensorflow_thread_counts_win(uvicorn_run: UvicornRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "6")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    entry_point.main()
    assert [uvicorn_run.environ[v] for v in TF_THREAD_VARIABLES] == ["6", "2"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SERVICE_PORT", "70000", "invalid settings:\n1 validation error for Settings\nport"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "invalid tracing settings: OTEL_TRACES_EXPORTER='zipkin': unknown exporter"),
    ],
)
def test_python_m_service_with_a_wrong_variable_exits_with_a_message_naming_it_before_starting_the_server(
    uvicorn_run: UvicornRun, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_:
        entry_point.main()
    assert str(exit_.value.code).startswith(message)
    assert not uvicorn_run.calls


@pytest.mark.live
def test_sigterm_answers_every_queued_request_refuses_later_ones_then_exits_within_the_grace_period(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    overrides = {"default_sentiment_model": "tiny-text", "shutdown_grace_s": "60", "request_timeout_s": "120"}
    with running_service(artifacts_dir, log_path, **overrides) as service:
        texts = [" ".join(["good"] * (i % 5) + ["bad"] * (i % 3)) or "fine" for i in range(24)]

        def post(payload: dict) -> httpx.Response:
            with httpx.Client(base_url=service.base_url, timeout=120) as http:
                return http.post("/sentiment", json=payload)

        with ThreadPoolExecutor(max_workers=25) as pool:
            # A "slow" text keeps the model busy for a second or more; the others queue up behind it.
            busy = pool.submit(post, {"text": "slow"})
            time.sleep(0.5)  # taken into a model call at once
            futures = [pool.submit(post, {"text": text}) for text in texts]
            wait_for_queue(service, 20)
            # A request whose body is still arriving when the signal comes: it must be refused, not served.
            late = connect(service.base_url)
            request = post_json("/sentiment", {"text": "good"})
            late.sendall(request[:-5])
            time.sleep(0.2)
            service.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            wait_for_log(service, "Shutting down")  # uvicorn has begun its own shutdown
            # While the queue is still being answered, no new connection is accepted.
            assert refuses_connections(service)
            still_draining = service.process.poll() is None and not all(f.done() for f in futures)
            late.sendall(request[-5:])
            late_reply = read_reply(late)
            answers = [future.result() for future in futures]
            busy_answer = busy.result()
        exit_code = service.process.wait(timeout=60)
        exited_after = time.monotonic() - signalled
    assert still_draining, "the queue was already empty when the late request came: nothing was drained"
    assert busy_answer.status_code == 200
    for text, answer in zip(texts, answers, strict=True):
        assert answer.status_code == 200, answer.text
        positive = answer.json()["results"][0]["probabilities"]["positive"]
        assert positive == pytest.approx(expected_positive(text, SERVED_VERSION), abs=1e-5), text
    # The late request met a draining service: refused with Retry-After, and told to close its connection.
    assert late_reply.status == 503, late_reply.body
    assert late_reply.json()["error"]["code"] == "unavailable" and late_reply.headers["retry-after"] == "1"
    assert late_reply.closes
    assert exit_code in (0, -signal.SIGTERM) and exited_after < 60
    log = log_path.read_text()
    # The drain began at the signal, before uvicorn stopped listening, and ended in a clean stop.
    assert log.index("draining: readiness is 503") < log.index("Shutting down") < log.index("Application shutdown")


@pytest.mark.live
def test_requests_still_queued_as_the_grace_period_runs_out_are_refused_with_a_retryable_503_and_the_process_exits(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    # Batching off: each "slow" text is a model call of its own, several seconds of queue in all.
    overrides = {"default_sentiment_model": "tiny-text", "shutdown_grace_s": "1", "max_batch_size": "1",
                 "queue_limit": "64", "request_timeout_s": "120"}
    with running_service(artifacts_dir, log_path, **overrides) as service:

        def post(text: str) -> httpx.Response | str:
            try:
                with httpx.Client(base_url=service.base_url, timeout=120) as http:
                    return http.post("/sentiment", json={"text": text})
            except httpx.TransportError as exc:
                return f"no answer: {exc!r}"

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(post, "slow")]
            time.sleep(0.5)  # taken into a model call at once
            futures += [pool.submit(post, text) for text in ("slow", "slow", "good", "bad", "good good")]
            wait_for_queue(service, 5)
            service.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            answers = [future.result() for future in futures]
        exit_code = service.process.wait(timeout=120)
        exited_after = time.monotonic() - signalled
    log = log_path.read_text()
    unanswered = [a for a in answers if isinstance(a, str)]
    assert not unanswered, unanswered  # every caller hears back; none is left hanging or reset
    running, *queued = answers
    # Still queued half a second before the grace ran out: refused with the service's own 503, which a load
    # balancer retries on another replica (a 500 it would pass on to the client).
    assert all(isinstance(a, httpx.Response) for a in queued)
    refused = [a for a in queued if isinstance(a, httpx.Response) and a.status_code == 503]
    assert len(refused) >= 3, [a.status_code for a in queued if isinstance(a, httpx.Response)]
    for answer in refused:
        assert answer.json()["error"]["code"] == "shutting_down" and answer.headers["retry-after"]
    assert {a.status_code for a in queued if isinstance(a, httpx.Response)} <= {200, 503}
    # The model call running when the grace ran out cannot be stopped: uvicorn cancels its request (500).
    assert "timeout graceful shutdown exceeded" in log
    assert isinstance(running, httpx.Response) and running.status_code == 500
    assert exit_code in (0, -signal.SIGTERM)
    # It exits once the model call running at the deadline is over, not after the whole queue.
    assert exited_after < 40
    statuses = Counter(a.status_code for a in answers if isinstance(a, httpx.Response))
    print(f"\ngrace ran out: {dict(statuses)}, exited {exited_after:.1f} s after SIGTERM (grace 1 s)")


@pytest.mark.live
def test_keep_alive_clients_under_load_get_an_answer_to_every_request_sent_before_sigterm(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    log_path = tmp_path / "service.log"
    overrides = {"default_sentiment_model": "tiny-text", "shutdown_grace_s": "30"}
    outcomes: list[tuple[float, str]] = []  # (when the request's bytes were sent, what came back)
    closes_after_signal: list[bool] = []
    lock = threading.Lock()
    signalled = float("inf")

    def client(service: RunningService, index: int, stop: threading.Event) -> None:
        text = " ".join(["good"] * (index % 4) + ["bad"] * (index % 3)) or "plain"
        request = post_json("/sentiment", {"text": text})
        sock: socket.socket | None = None
        while not stop.is_set():
            if sock is None:
                try:
                    sock = connect(service.base_url)
                except OSError:
                    with lock:
                        outcomes.append((time.monotonic(), "refused"))
                    return  # the server stopped listening: a client would go elsewhere
            sent = time.monotonic()
            try:
                sock.sendall(request)
                reply: Reply | None = read_reply(sock)
            except (NoAnswer, OSError) as exc:
                reply, outcome = None, f"no answer ({type(exc).__name__})"
            if reply is not None:
                outcome = _classify(reply, text)
            with lock:
                outcomes.append((sent, outcome))
                if sent > signalled and reply is not None:
                    closes_after_signal.append(reply.closes)
            if reply is None or reply.closes:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    with running_service(artifacts_dir, log_path, **overrides) as service:
        stop = threading.Event()
        threads = [threading.Thread(target=client, args=(service, i, stop)) for i in range(32)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        in_flight = queued(service)
        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        service.process.wait(timeout=60)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    before = Counter(outcome for sent, outcome in outcomes if sent < signalled)
    after = Counter(outcome for sent, outcome in outcomes if sent >= signalled)
    print(f"\n32 keep-alive clients, SIGTERM after 3 s ({in_flight:.0f} inputs queued at the signal): "
          f"sent before it {dict(before)}; sent after it {dict(after)}")
    assert before["200"] > 100, before  # there was real load when the signal came
    assert set(before) <= {"200", "503 with Retry-After"}, before
    # A request sent after the signal was answered (200, or 503 to go elsewhere) or met a closed connection:
    # uvicorn closes idle keep-alive connections at once, so how many get an answer depends on timing.
    assert all(outcome in ("200", "503 with Retry-After", "refused") or outcome.startswith("no answer")
               for outcome in after), after
    # Every answer given to one told the client to close its connection (that one is given is certain in
    # the test above, where a request is caught half-sent by the signal).
    assert all(closes_after_signal), closes_after_signal


def _classify(reply: Reply, text: str) -> str:
    if reply.status == 200:
        positive = reply.json()["results"][0]["probabilities"]["positive"]
        return "200" if abs(positive - expected_positive(text, SERVED_VERSION)) < 1e-5 else "200 with a wrong answer"
    if reply.status == 503 and reply.headers.get("retry-after") == "1":
        return "503 with Retry-After"
    return f"{reply.status}"
