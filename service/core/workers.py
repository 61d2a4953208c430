"""What the worker processes of one service share, when SERVICE_WORKERS is above 1.

Each process loads its own copy of the models and has its own batchers; the kernel spreads
connections over them (one listening socket). They share one folder, the standard
PROMETHEUS_MULTIPROC_DIR, for two things: prometheus-client's per-process metric files,
which /metrics adds up, and a `ready-<pid>` mark per process, so that `/readyz` from any
of them means every process is loaded, warm and not draining.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared_dir() -> Path | None:
    """The folder the worker processes share, or None with a single process."""
    value = os.environ.get(SHARED_DIR_ENV)
    return Path(value) if value else None


class ReadinessBoard:
    """Each process's readiness, visible to all of them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.folder = shared_dir() if workers > 1 else None
        self._mark = self.folder / f"ready-{os.getpid()}" if self.folder else None

    def set(self, ready: bool) -> None:
        if self._mark is None:
            return
        if ready:
            self._mark.touch()
        else:
            self._mark.unlink(missing_ok=True)

    def all_ready(self) -> bool:
        """True when as many live processes as configured have said they are ready."""
        if self.folder is None:
            return True
        live = sum(1 for mark in self.folder.glob("ready-*") if _alive(int(mark.name.removeprefix("ready-"))))
        return live >= self.workers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
