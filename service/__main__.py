"""`python -m service`: run the service with uvicorn on the configured host and port.

On SIGTERM (or Ctrl-C) readiness turns 503 and new requests are refused at once; uvicorn
stops accepting connections, answers what is queued and in flight for at most
SERVICE_SHUTDOWN_GRACE_S, then the models are unloaded and the process exits.

With SERVICE_WORKERS above 1, uvicorn's supervisor runs that many processes on one port,
each building its own app (and loading its own models); see service.core.workers. Each
process's TensorFlow gets its share of the cores (service.core.workers.tensorflow_threads)
unless TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS say otherwise.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise in a service log; set before
# TensorFlow is first imported. An explicit TF_CPP_MIN_LOG_LEVEL still wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import uvicorn  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from service.core.tracing import TracingConfigError, tracing_from_environment  # noqa: E402
from service.core.workers import SHARED_DIR_ENV, tensorflow_threads  # noqa: E402
from service.settings import LOG_FORMAT, Settings  # noqa: E402
from service.shims.uvicorn_coalescing import CoalescingHttpProtocol  # noqa: E402


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid settings:\n{exc}")
    try:  # checked here too, so that a wrong OTEL_* variable is one line, not a worker's traceback
        tracing = tracing_from_environment()
    except TracingConfigError as exc:
        sys.exit(f"invalid tracing settings: {exc}")
    if tracing is not None:
        tracing.shutdown()  # each process builds its own with its app
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    # Set before the app (and TensorFlow) is imported, here or in each worker process.
    for variable, threads in tensorflow_threads(os.cpu_count() or 1, settings.workers).items():
        os.environ.setdefault(variable, threads)
    shared = None
    if settings.workers > 1 and not os.environ.get(SHARED_DIR_ENV):
        shared = tempfile.mkdtemp(prefix="service-workers-")
        os.environ[SHARED_DIR_ENV] = shared
    try:
        # The app is built by each (worker) process from the same SERVICE_* environment.
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,  # service.api.access_log logs one line per request instead
            http=CoalescingHttpProtocol,  # one write per response (service.shims.uvicorn_coalescing)
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


if __name__ == "__main__":
    main()
