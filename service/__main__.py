"""`python -m service`: run the service with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from service.settings import Settings


def main() -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit(f"invalid settings:\n{exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # service.access logs one line per request instead
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
