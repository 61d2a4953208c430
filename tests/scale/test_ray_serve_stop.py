"""Stopping `make serve-ray` leaves no HAProxy and no Ray process behind, and HAProxy listens on loopback.

Each test runs `python -m service.ray_serve` as `make serve-ray` does (its own local Ray node), in a
session of its own, waits until it serves, and stops it as a user would: SIGTERM to the process,
or Ctrl-C, which a terminal sends as SIGINT to the whole foreground process group, Ray's processes
included. Afterwards no process of that session may be left, the HAProxy it ran included (found
by its command line while it served), and the serving port must be free again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadtests.server import free_ports, is_ready
from tests.scale.cluster import kill_session, session_processes
from tests.tiny_models import build_text_model

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / "bench-results" / "scale" / "stop"

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_stopping_serve_ray_leaves_no_haproxy_or_ray_process(how: str, tmp_path: Path) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    build_text_model(tmp_path / "models" / "tiny-text" / "1")
    port, stats_port = free_ports(2)
    env = os.environ | {
        "SERVICE_ARTIFACTS_DIR": str(tmp_path / "models"), "SERVICE_DEFAULT_SENTIMENT_MODEL": "tiny-text",
        "SERVICE_SHUTDOWN_GRACE_S": "2", "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
        "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "service.ray_serve", "--port", str(port), "--num-cpus", "1",
               "--cpus-per-replica", "1", "--max-replicas", "1", "--start-timeout-s", "150"]
    log_path = LOGS / f"service-ray-serve-{how}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not is_ready(f"http://127.0.0.1:{port}/readyz", 2):
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        haproxy = [psutil.Process(pid) for pid in session_processes(process.pid)
                   if _is_haproxy(pid)]
        assert haproxy, "no HAProxy process in the session of make serve-ray"
        listening = {(c.laddr.ip, c.laddr.port) for p in haproxy for c in p.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN}
        # The serving port where it was asked for, and the statistics and metrics on loopback only.
        assert ("127.0.0.1", port) in listening and ("127.0.0.1", stats_port) in listening, listening
        assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening

        if how == "SIGTERM":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=150)
        # Ray's processes exit on their own once their node is gone (workers, the dashboard's
        # helpers), some a moment after the driver: anything still there after a minute was left.
        deadline = time.monotonic() + 60
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [(pid, _title(pid)) for pid in session_processes(process.pid)]
        assert left == [], left
        assert not [p.pid for p in haproxy if p.is_running()], "HAProxy outlived make serve-ray"
        with socket.socket() as sock:  # the next start can take the port: nothing listens there any more
            # As a server does (HAProxy, uvicorn): the closed connections' TIME_WAIT does not hold the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
        if how == "SIGTERM":
            assert process.returncode == 0, log_path.read_text()[-3000:]
    finally:
        kill_session(process)


def _is_haproxy(pid: int) -> bool:
    return Path(_title(pid).split(" ", 1)[0]).name == "haproxy"


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
