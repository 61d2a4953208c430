"""`python -m service`: run the service with uvicorn on the configured host and port.

On SIGTERM (or Ctrl-C) readiness turns 503 and new requests are refused at once; uvicorn
stops accepting connections, answers what is queued and in flight for at most
SERVICE_SHUTDOWN_GRACE_S, then the models are unloaded and the process exits.
"""

from __future__ import annotations

import logging
import os
import sys
from types import FrameType

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise in a service log; set before
# TensorFlow is first imported. An explicit TF_CPP_MIN_LOG_LEVEL still wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import uvicorn  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from service.app import create_app  # noqa: E402
from service.core.registry import ModelRegistry  # noqa: E402
from service.settings import Settings  # noqa: E402


class DrainingServer(uvicorn.Server):
    """A uvicorn server that tells the registry to drain as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, registry: ModelRegistry) -> None:
        super().__init__(config)
        self.registry = registry

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.registry.begin_draining()
        super().handle_exit(sig, frame)


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid settings:\n{exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # service.access logs one line per request instead
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    DrainingServer(config, app.state.registry).run()


if __name__ == "__main__":
    main()
