"""Four tiny text versions that answer in known ways, for rollouts.

- 1, the stable one in most tests;
- 2: the same labels as 1 (its probabilities are steeper): a candidate that agrees;
- 3: a card that swaps the labels: the same output indices, every label inverted (hostile);
- 4: its model call fails on the text "good" (and on nothing else), where the others answer.

With SERVICE_MODEL_VERSIONS=2 only 3 and 4 would load by themselves: versions 1 and 2 are
loaded because a policy names them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from service.rollout.policy import Policy, PolicyStore
from service.settings import Settings
from tests.tiny_models import TEXT_LABELS, build_text_model

MODEL = "tiny-text"


@pytest.fixture(scope="session")
def rollout_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollout-models")
    build_text_model(root / MODEL / "1")
    build_text_model(root / MODEL / "2")
    build_text_model(root / MODEL / "3", labels=list(reversed(TEXT_LABELS)))
    build_text_model(root / MODEL / "4", fails_on="good")
    return root


@pytest.fixture
def artifacts(rollout_models: Path, tmp_path: Path) -> Path:
    """A private copy, so a test can publish, and write policies beside the versions."""
    root = tmp_path / "artifacts"
    shutil.copytree(rollout_models, root)
    return root


def settings_for(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"artifacts_dir": root, "default_sentiment_model": MODEL, "reload_interval_s": 0,
                              "model_versions": 2}
    return Settings(**(values | overrides))


def write_policy(root: Path, **fields: Any) -> Policy:
    """Write tiny-text's policy as the next revision (the test is the only writer)."""
    store = PolicyStore(root)
    current = store.read(MODEL)
    return store.write(Policy(model=MODEL, **fields), current.revision if current else None)


# Gates for tiny models: their cards have no monitoring reference, and latency is no test's business.
LENIENT = {"min_requests": 10, "max_p99_ratio": None, "max_drift_vs_reference": None}


async def until(condition: Callable[[], Awaitable[object]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
