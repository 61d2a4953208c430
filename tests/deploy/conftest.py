"""The deployment tests: `deploy`-marked ones need a Docker engine and run only under `make test-deploy`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: builds the image and runs the compose stack (DEPLOY_TESTS=1, needs a Docker engine)"
    )
