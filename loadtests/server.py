"""Run `python -m service` as a real process on 127.0.0.1 (for benchmarks and end-to-end tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    """`count` different ports that no address of this machine is using now.

    Bound on the wildcard address, so that a port taken on any address is never handed out: Ray and
    HAProxy listen on every address, and a port free on 127.0.0.3 alone may be taken on 127.0.0.2.
    The sockets stay open until all are bound, so that the kernel cannot hand out one port twice.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("0.0.0.0", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def is_ready(url: str, timeout_s: float = 1) -> bool:
    """True when `url` (a readiness probe) answers 200 within the timeout."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def supervised(
    name: str, command: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, ready_url: str,
    start_timeout_s: float, stop_timeout_s: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (its output in `log_path`) until `ready_url` answers 200; SIGTERM it on leaving.

    The process leads a session of its own, so that what it started (worker processes, a local Ray)
    is killed with it if it has not stopped `stop_timeout_s` after the SIGTERM.
    """
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not is_ready(ready_url, 2):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_path.read_text()[-5000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} was not ready in {start_timeout_s} s:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def running_service(
    artifacts_dir: Path, log_path: Path, start_timeout_s: float = 120, tree: Path = REPO,
    extra_env: Mapping[str, str] | None = None, **settings: str,
) -> Iterator[RunningService]:
    """Start the service with `SERVICE_*` settings, wait until /readyz says ready, stop it after.

    `tree` is the checkout whose `service` package runs (another one, to compare two builds);
    `extra_env` sets other environment variables (TensorFlow's, say) for it.
    """
    port = free_port()
    env = os.environ | {"SERVICE_ARTIFACTS_DIR": str(artifacts_dir), "SERVICE_PORT": str(port),
                        "TF_CPP_MIN_LOG_LEVEL": "2"}
    env |= {f"SERVICE_{key.upper()}": value for key, value in settings.items()}
    env |= extra_env or {}
    url = f"http://127.0.0.1:{port}"
    with supervised("the service", [sys.executable, "-m", "service"], cwd=tree, env=env, log_path=log_path,
                    ready_url=f"{url}/readyz", start_timeout_s=start_timeout_s, stop_timeout_s=30) as process:
        yield RunningService(url, process, log_path)
