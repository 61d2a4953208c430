"""The deployment tests: `deploy`-marked ones need a Docker engine and run only under `make test-deploy`,
which names the image they build in DEPLOY_TEST_IMAGE. Elsewhere (make test) they are deselected, not
skipped: they are a separate suite, like tests/scale.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: builds the image DEPLOY_TEST_IMAGE names and runs the compose stack (needs a Docker engine)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DEPLOY_TEST_IMAGE"):
        return
    deselected = [item for item in items if item.get_closest_marker("deploy")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]
