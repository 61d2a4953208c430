"""A real `python -m service` process on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(artifacts_dir: Path, log_path: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the service, wait until it is ready, yield its base URL and process, then stop it."""
    port = free_port()
    env = os.environ | {"SERVICE_ARTIFACTS_DIR": str(artifacts_dir), "SERVICE_PORT": str(port),
                        "SERVICE_DEFAULT_SENTIMENT_MODEL": "tiny-text", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env |= {f"SERVICE_{key.upper()}": value for key, value in settings.items()}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready in 90 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
