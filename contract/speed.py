"""In-process speed of a model, and the machine a figure was measured on (cards and benchmarks cite both)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def measure_throughput(predict: Callable[[Any], np.ndarray], batches: list[Any], seconds: float = 5.0) -> float:
    """Items per second of `predict`, cycling through `batches` after one warm-up call each."""
    for batch in batches:
        predict(batch)
    items, calls, started = 0, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        batch = batches[calls % len(batches)]
        predict(batch)
        items += len(batch)
        calls += 1
    return items / elapsed


def machine_description() -> str:
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, TensorFlow {tf.__version__}"
