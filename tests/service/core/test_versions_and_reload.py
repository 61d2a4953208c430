"""Versions: pinning, hot reload under traffic, failed versions, retirement; and draining."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import serving
from tests.service.images import solid
from tests.tiny_models import build_text_model


def test_a_request_can_pin_a_loaded_version(client) -> None:
    pinned = client.post("/sentiment", json={"text": "good", "version": 1}).json()
    newest = client.post("/sentiment", json={"text": "good"}).json()
    assert (pinned["version"], newest["version"]) == (1, 2)
    image = client.post("/classify-image?version=1", content=solid("red"), headers={"Content-Type": "image/png"})
    assert image.json()["version"] == 1


def test_pinning_a_version_that_is_not_loaded_is_a_404(client) -> None:
    response = client.post("/sentiment", json={"text": "good", "version": 7})
    assert response.status_code == 404
    assert "loaded versions: 1, 2" in response.json()["error"]["accepted"]


@pytest.fixture
def live_artifacts(artifacts_dir: Path, tmp_path: Path) -> Path:
    """A private artifacts folder holding tiny-text version 1 only."""
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir / "tiny-text" / "1", root / "tiny-text" / "1")
    return root


def _drop_in(folder: Path, version: int, staging: Path) -> None:
    """Publish a new version the safe way: build it aside, then rename it into place."""
    build_text_model(staging / "tiny-text" / str(version))
    os.rename(staging / "tiny-text" / str(version), folder / "tiny-text" / str(version))


async def test_a_new_version_takes_over_under_steady_traffic_with_no_failed_request(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.2, model_versions=1))
    statuses: list[int] = []
    versions: list[int] = []
    switched_at: list[float] = []
    async with serving(app) as http:

        async def client_loop(stop: asyncio.Event) -> None:
            while not stop.is_set():
                response = await http.post("/sentiment", json={"text": "good good"})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.append(response.json()["version"])
                    if versions[-1] == 2 and not switched_at:
                        switched_at.append(time.monotonic())

        stop = asyncio.Event()
        clients = [asyncio.ensure_future(client_loop(stop)) for _ in range(8)]
        await asyncio.sleep(0.5)
        dropped_at = time.monotonic()
        await asyncio.to_thread(_drop_in, live_artifacts, 2, tmp_path / "staging")
        for _ in range(200):
            if switched_at and len(versions) - versions.index(2) > 50:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*clients)
        models = (await http.get("/models")).json()["models"]
    assert statuses and all(status == 200 for status in statuses), set(statuses)
    first_new = versions.index(2)
    assert set(versions[:first_new]) == {1} and set(versions[first_new:]) == {2}  # a clean switch
    assert switched_at[0] - dropped_at < 10
    [text] = models
    assert [(v["version"], v["state"]) for v in text["versions"]] == [(1, "available"), (2, "serving")]
    print(f"\nreload: {len(statuses)} requests, 0 failed, switched {switched_at[0] - dropped_at:.2f} s after drop-in")


async def test_a_version_still_being_copied_in_is_only_loaded_once_it_settles(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.3))
    async with serving(app) as http:
        build_text_model(tmp_path / "staging" / "tiny-text" / "2")
        shutil.copytree(tmp_path / "staging" / "tiny-text" / "2", live_artifacts / "tiny-text" / "2")  # not atomic
        for _ in range(100):
            if (await http.post("/sentiment", json={"text": "good"})).json()["version"] == 2:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("version 2 was never served")
        metrics = (await http.get("/metrics")).text
    assert "service_model_load_failures_total{" not in metrics  # no half-copied folder was tried


async def test_a_broken_new_version_is_reported_and_never_replaces_the_working_one(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.1))
    async with serving(app) as http:
        staging = tmp_path / "broken" / "3"
        shutil.copytree(live_artifacts / "tiny-text" / "1", staging)
        card = json.loads((staging / "model.json").read_text())
        (staging / "model.json").write_text(json.dumps(card | {"version": 3}))
        (staging / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(staging, live_artifacts / "tiny-text" / "3")
        for _ in range(100):
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            if any(v["state"] == "failed" for v in versions):
                break
            await asyncio.sleep(0.1)
        answer = await http.post("/sentiment", json={"text": "good"})
        metrics = (await http.get("/metrics")).text
    failed = next(v for v in versions if v["version"] == 3)
    assert failed["state"] == "failed" and "tiny-text/3: cannot load the SavedModel" in failed["error"]
    assert answer.status_code == 200 and answer.json()["version"] == 1
    assert 'service_model_load_failures_total{model="tiny-text"} 1.0' in metrics


async def test_draining_turns_readiness_503_and_refuses_new_requests(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    async with serving(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        app.state.registry.begin_draining()
        ready = await http.get("/readyz")
        refused = await http.post("/sentiment", json={"text": "good"})
    assert ready.status_code == 503
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
