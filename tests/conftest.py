"""Fixtures shared by the whole suite: tiny real SavedModels and apps serving them."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tests.tiny_models import build_image_model, build_text_model  # noqa: E402


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-image v1, and tiny-text v1 and v2 (v2 is the one served)."""
    root = tmp_path_factory.mktemp("artifacts")
    build_image_model(root / "tiny-image" / "1")
    build_text_model(root / "tiny-text" / "1")
    build_text_model(root / "tiny-text" / "2")
    return root
