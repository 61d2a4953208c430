"""What the processes of one service share: the cores, and with SERVICE_WORKERS above 1 a folder.

Each process loads its own copy of the models and has its own batchers; the kernel spreads
connections over them (one listening socket). They share one folder, the standard
PROMETHEUS_MULTIPROC_DIR, for two things: prometheus-client's per-process metric files,
which /metrics adds up, and a `ready-<pid>` mark per process, so that `/readyz` from any
of them means every process is loaded, warm and not draining.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def tensorflow_threads(cores: int, processes: int = 1) -> dict[str, str]:
    """TensorFlow's pool sizes, as its environment variables, for each of `processes` on `cores`.

    Each process gets its share of the cores for ops that run side by side (inter-op), and one
    thread fewer, at least one, for splitting a single op (intra-op): that core is the event
    loop's, which reads, batches and answers every request. Left to itself TensorFlow sizes
    both pools by every core of the machine, and on 2 cores its second intra-op thread took
    more from the event loop than it gave the text models (docs/decisions/0004-tensorflow-thread-split.md).
    """
    share = max(1, cores // processes)
    return {"TF_NUM_INTRAOP_THREADS": str(max(1, share - 1)), "TF_NUM_INTEROP_THREADS": str(share)}


def cores_of_this_process() -> int | None:
    """This process's share of the cores, as `tensorflow_threads` sized TensorFlow's inter-op pool by it
    (or an operator set it), for runtimes that size their own pools (service.core.runtimes); None where
    nothing set it."""
    value = os.environ.get("TF_NUM_INTEROP_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


# How long a thread that holds the GIL may keep it while another waits for it (CPython's default: 5 ms).
# The model thread needs the GIL for a moment before and after each model call; with the event loop
# (or a scoring job's reader) busy it would wait a whole interval each time, the model idle meanwhile
# (docs/decisions/0003-gil-switch-interval.md).
GIL_SWITCH_INTERVAL_S = 0.0002


@contextmanager
def quick_gil_handoff() -> Iterator[None]:
    """The GIL switch interval at GIL_SWITCH_INTERVAL_S while models are called, the previous one after."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


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
