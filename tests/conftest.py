"""Fixtures shared by the whole suite: tiny real SavedModels and apps serving them."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Float32 for every test, and every service a test starts, unless it asks for another runtime: a faster
# runtime rounds, and the tests compare answers exactly (tests/service/core/test_runtimes.py sets its own).
os.environ["SERVICE_RUNTIME"] = "tensorflow"

import pytest  # noqa: E402

from tests.tiny_models import build_image_model, build_text_model  # noqa: E402

TESTS = Path(__file__).resolve().parent
# The lanes: `make test-fast` runs what is not marked slow (the inner loop, under a minute), `make test`
# runs everything. Slow: whole folders of training runs, the real browser, the deployment's tools, the
# benchmark and the Ray cluster, and anywhere a test starts a real server process (`live`).
SLOW_FOLDERS = {"training", "browser", "deploy", "loadtests", "scale"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.relative_to(TESTS).parts[0] in SLOW_FOLDERS or item.get_closest_marker("live"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-image v1, and tiny-text v1 and v2 (v2 is the one served)."""
    root = tmp_path_factory.mktemp("artifacts")
    build_image_model(root / "tiny-image" / "1")
    build_text_model(root / "tiny-text" / "1")
    build_text_model(root / "tiny-text" / "2")
    return root
