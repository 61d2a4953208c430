"""Versions: pinning, hot reload under traffic, settling, failed and retired versions; and draining.

The tiny versions answer differently (tests/tiny_models.py scales each answer by its version
number), so every check below reads which version answered from the answer itself, and
compares it with the `X-Model-Version` header that names the version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from service.app import create_app
from service.core.workers import SHARED_DIR_ENV
from service.settings import Settings
from tests.service.conftest import serving
from tests.service.images import encode, solid
from tests.tiny_models import (
    build_image_model,
    build_text_model,
    expected_image_probabilities,
    expected_positive,
)

TOLERANCE = 1e-5  # float32 model vs float64 expectation


def positive_of(response: httpx.Response) -> float:
    return response.json()["results"][0]["probabilities"]["positive"]


def test_a_request_can_pin_a_loaded_version_and_gets_that_versions_answer(client) -> None:
    pinned = client.post("/sentiment", json={"text": "good", "version": 1})
    newest = client.post("/sentiment", json={"text": "good"})
    assert (pinned.json()["version"], newest.json()["version"]) == (1, 2)
    assert (pinned.headers["x-model-version"], newest.headers["x-model-version"]) == ("1", "2")
    assert positive_of(pinned) == pytest.approx(expected_positive("good", 1), abs=TOLERANCE)
    assert positive_of(newest) == pytest.approx(expected_positive("good", 2), abs=TOLERANCE)
    image = client.post("/classify-image?version=1", content=solid("red"), headers={"Content-Type": "image/png"})
    assert image.json()["version"] == 1 and image.headers["x-model-version"] == "1"
    # Each version's batches are counted under its own name and number.
    metrics = client.get("/metrics").text
    for version in ("1", "2"):
        assert f'service_batch_size_count{{model="tiny-text",version="{version}"}}' in metrics


def test_pinning_a_version_that_is_not_loaded_is_a_404(client) -> None:
    response = client.post("/sentiment", json={"text": "good", "version": 7})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "version 7 of 'tiny-text' is not loaded"
    assert "loaded versions: 1, 2" in response.json()["error"]["accepted"]


def test_naming_an_unknown_model_or_one_of_another_kind_is_a_404_that_lists_the_right_ones(client) -> None:
    for name in ("tiny-image", "nope"):  # an image model cannot answer /sentiment
        error = client.post("/sentiment", json={"text": "good", "model": name}).json()["error"]
        assert (error["code"], error["message"], error["accepted"]) == \
            ("not_found", f"no text-classification model named {name!r}", "one of: tiny-text")
    response = client.get("/models/nope")
    assert response.status_code == 404
    assert (response.json()["error"]["message"], response.json()["error"]["accepted"]) == \
        ("no model named 'nope'", "one of: tiny-image, tiny-text")


@pytest.fixture
def live_artifacts(artifacts_dir: Path, tmp_path: Path) -> Path:
    """A private artifacts folder holding tiny-text version 1 only."""
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir / "tiny-text" / "1", root / "tiny-text" / "1")
    return root


def _publish(root: Path, model: str, version: int, staging: Path, build=build_text_model, **options) -> None:
    """Publish a new version the safe way: build it aside, then rename it into place."""
    build(staging / model / str(version), **options)
    os.rename(staging / model / str(version), root / model / str(version))


async def _until(condition: Callable[[], object], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# -- hot reload under traffic ----------------------------------------------------------------------

RGBS = [(150, 120, 100), (100, 140, 120), (110, 100, 145)]  # no colour saturates: v1 and v2 differ


def _image_png(rgb: tuple[int, int, int]) -> bytes:
    from PIL import Image

    return encode(Image.new("RGB", (12, 10), rgb), "PNG")


async def test_new_versions_take_over_under_traffic_on_every_route_each_client_getting_its_own_answers(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir / "tiny-text" / "1", root / "tiny-text" / "1")
    shutil.copytree(artifacts_dir / "tiny-image" / "1", root / "tiny-image" / "1")
    app = create_app(make_settings(artifacts_dir=root, reload_interval_s=0.2, model_versions=1))
    # Per client: the versions that answered it, in order, and anything that was not a right answer.
    seen: dict[str, list[int]] = {}
    wrong: list[str] = []
    retired_under: Counter[str] = Counter()

    def check_version(client: str, response: httpx.Response, body_version: int | str) -> int | None:
        if response.status_code != 200:
            wrong.append(f"{client}: {response.status_code} {response.text[:200]}")
            return None
        version = int(response.headers["x-model-version"])
        if int(body_version) != version:
            wrong.append(f"{client}: body says version {body_version}, header {version}")
        seen.setdefault(client, []).append(version)
        return version

    def retired(response: httpx.Response) -> bool:
        """A request that held a version retired under it: 503 shutting_down, to be retried (tested below)."""
        if response.status_code != 503:
            return False
        error = response.json()["error"]
        code = error if isinstance(error, str) else error["code"]
        return ("shutting down" in code or code == "shutting_down") and response.headers["retry-after"] == "1"

    async with serving(app) as http:

        async def sentiment_client(index: int, stop: asyncio.Event) -> None:
            name, text = f"sentiment-{index}", " ".join(["good"] * (index + 1) + ["bad"] * (index % 2))
            while not stop.is_set():
                response = await http.post("/sentiment", json={"text": text})
                version = check_version(name, response, response.json().get("version", -1))
                if version is not None and abs(positive_of(response) - expected_positive(text, version)) > TOLERANCE:
                    wrong.append(f"{name}: {positive_of(response)} is not version {version}'s answer to {text!r}")

        async def image_client(index: int, stop: asyncio.Event) -> None:
            name, rgb = f"image-{index}", RGBS[index]
            png = _image_png(rgb)
            while not stop.is_set():
                response = await http.post("/classify-image", content=png, headers={"Content-Type": "image/png"})
                if retired(response):
                    retired_under[name] += 1
                    continue
                version = check_version(name, response, response.json().get("version", -1))
                if version is None:
                    continue
                got = {e["label"]: e["probability"] for e in response.json()["results"][0]["top_k"]}
                want = dict(zip(("red", "green", "blue"), expected_image_probabilities(rgb, version), strict=True))
                if any(abs(got[label] - want[label]) > TOLERANCE for label in want):
                    wrong.append(f"{name}: {got} is not version {version}'s answer to {rgb}")

        async def v2_client(index: int, stop: asyncio.Event) -> None:
            name, texts = f"v2-{index}", ["bad " * (index + 1), "good bad good"]
            request = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]}
            while not stop.is_set():
                response = await http.post("/v2/models/tiny-text/infer", json=request)
                if retired(response):
                    retired_under[name] += 1
                    continue
                version = check_version(name, response, response.json().get("model_version", -1))
                if version is None:
                    continue
                data = response.json()["outputs"][0]["data"]
                want = [expected_positive(text, version) for text in texts]
                if any(abs(got - w) > TOLERANCE for got, w in zip(data[1::2], want, strict=True)):
                    wrong.append(f"{name}: {data} is not version {version}'s answer to {texts}")

        stop = asyncio.Event()
        clients = [asyncio.ensure_future(sentiment_client(i, stop)) for i in range(3)]
        clients += [asyncio.ensure_future(image_client(i, stop)) for i in range(len(RGBS))]
        clients += [asyncio.ensure_future(v2_client(i, stop)) for i in range(2)]
        await asyncio.sleep(0.5)
        dropped_at = time.monotonic()
        staging = tmp_path / "staging"
        await asyncio.to_thread(_publish, root, "tiny-text", 2, staging)
        await asyncio.to_thread(_publish, root, "tiny-image", 2, staging, build_image_model)

        async def every_client_served_by_v2_a_few_times() -> bool:
            return len(seen) == 8 and all(versions[-5:] == [2] * 5 for versions in seen.values())

        try:
            await _until(every_client_served_by_v2_a_few_times, "every client to be answered by version 2", 90)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        switched_in = time.monotonic() - dropped_at
        models = {m["name"]: m for m in (await http.get("/models")).json()["models"]}
    assert not wrong, wrong[:10]
    for client, versions in seen.items():
        first_new = versions.index(2)
        assert set(versions[:first_new]) == {1} and set(versions[first_new:]) == {2}, client  # a clean switch
        assert first_new > 0, f"{client} never saw version 1 answer"
    for name in ("tiny-text", "tiny-image"):
        assert [(v["version"], v["state"]) for v in models[name]["versions"]] == [(1, "available"), (2, "serving")]
    total = sum(len(v) for v in seen.values())
    print(f"\nreload: {total} right answers from 8 clients on 3 routes, switched within {switched_in:.2f} s, "
          f"{sum(retired_under.values())} answered 503 shutting_down (their version retired under them)")


async def test_a_model_folder_published_while_serving_is_loaded_and_served_under_its_name(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.1))
    async with serving(app) as http:
        await asyncio.to_thread(build_text_model, tmp_path / "staging" / "reviews" / "3")
        os.rename(tmp_path / "staging" / "reviews", live_artifacts / "reviews")

        async def reviews_answers() -> bool:
            return (await http.post("/sentiment", json={"text": "good", "model": "reviews"})).status_code == 200

        await _until(reviews_answers, "the new model to be served", 30)
        answer = await http.post("/sentiment", json={"text": "good bad good", "model": "reviews"})
        models = (await http.get("/models")).json()["models"]
    assert (answer.json()["model"], answer.json()["version"]) == ("reviews", 3)
    assert positive_of(answer) == pytest.approx(expected_positive("good bad good", 3), abs=TOLERANCE)
    assert {m["name"]: m["serving_version"] for m in models} == {"tiny-text": 1, "reviews": 3}


async def test_with_reload_off_a_version_published_while_serving_is_never_loaded(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0))  # 0: never look again
    async with serving(app) as http:
        await asyncio.to_thread(_publish, live_artifacts, "tiny-text", 2, tmp_path / "staging")
        await asyncio.sleep(2)  # time enough to load it had anyone looked
        answer = await http.post("/sentiment", json={"text": "good"})
        versions = (await http.get("/models/tiny-text")).json()["versions"]
    assert answer.headers["x-model-version"] == "1"
    assert [(v["version"], v["state"]) for v in versions] == [(1, "serving")]


# -- a version retired while a request holds it -----------------------------------------------------


class GatedBody:
    """A request body sent in two parts: the second only once `release` is set."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        half = len(self.data) // 2
        self.started.set()
        yield self.data[:half]
        await self.release.wait()
        yield self.data[half:]


@pytest.mark.parametrize("route", ["/classify-image", "/v2/models/tiny-image/infer"])
async def test_a_version_retired_while_a_request_holds_it_answers_503_shutting_down(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path, route: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir / "tiny-image" / "1", root / "tiny-image" / "1")
    # No watcher: this test decides when the folder is looked at. A short timeout: a request left
    # on a closed batcher would otherwise hang for long.
    app = create_app(make_settings(artifacts_dir=root, reload_interval_s=0, model_versions=1, request_timeout_s=3))
    registry = app.state.registry
    if route == "/classify-image":
        body, content_type = GatedBody(solid("red")), "image/png"
    else:
        request = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": [1, 8, 8, 3], "data": [255] * 192}]}
        body, content_type = GatedBody(json.dumps(request).encode()), "application/json"
    async with serving(app) as http:
        held = asyncio.ensure_future(http.post(route, content=body, headers={"Content-Type": content_type}))
        await asyncio.wait_for(body.started.wait(), 10)  # the route has taken version 1 and reads its body
        await asyncio.to_thread(_publish, root, "tiny-image", 2, tmp_path / "staging", build_image_model)
        await registry.refresh()  # sees version 2 for the first time
        await registry.refresh()  # unchanged since: loads it, and retires version 1
        assert sorted(registry.model("tiny-image").loaded) == [2]
        await asyncio.sleep(0.1)  # version 1's batcher closes
        body.release.set()
        response = await held
        after = await http.post("/classify-image", content=solid("red"), headers={"Content-Type": "image/png"})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    if route == "/classify-image":
        assert error["code"] == "shutting_down"
    else:
        assert "shutting down" in error
    assert after.status_code == 200 and after.headers["x-model-version"] == "2"
    # The reload is on record: which version came in from where, which one went and why.
    messages = [record.getMessage() for record in caplog.records
                if record.name in ("service.registry", "service.loading")]
    assert f"loaded tiny-image version 2 ({root / 'tiny-image' / '2'})" in messages
    assert "retiring tiny-image version 1 (superseded)" in messages
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


# -- settling ---------------------------------------------------------------------------------------


def _copy_slowly(source: Path, target: Path, chunk: int = 512, pause_s: float = 0.015) -> None:
    """Copy a folder the way a slow `cp -r` would: file by file, a little at a time (run it in a thread)."""
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        with open(destination, "wb") as out:
            for start in range(0, max(len(data), 1), chunk):
                out.write(data[start : start + chunk])
                out.flush()
                time.sleep(pause_s)


async def test_a_version_still_being_copied_in_is_only_loaded_once_it_settles(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    interval = 0.5
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=interval))
    states: list[str] = []
    async with serving(app) as http:
        build_text_model(tmp_path / "staging" / "tiny-text" / "2")
        started = time.monotonic()
        # Another thread copies while the watcher polls on the event loop: it can see the folder half-written.
        copying = asyncio.ensure_future(asyncio.to_thread(
            _copy_slowly, tmp_path / "staging" / "tiny-text" / "2", live_artifacts / "tiny-text" / "2"))
        while not copying.done():
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            states += [v["state"] for v in versions if v["version"] == 2]
            served = (await http.post("/sentiment", json={"text": "good"})).headers["x-model-version"]
            assert served == "1", "version 2 was served before its copy was complete"
            await asyncio.sleep(0.05)
        await copying
        copy_s = time.monotonic() - started

        async def version_2_answers() -> bool:
            response = await http.post("/sentiment", json={"text": "good"})
            return response.headers["x-model-version"] == "2"

        await _until(version_2_answers, "version 2 to be served", 30)
        answer = await http.post("/sentiment", json={"text": "good good bad"})
        metrics = (await http.get("/metrics")).text
    assert copy_s > 3 * interval, f"the copy took {copy_s:.1f} s: too fast for the watcher to see it half-done"
    assert "failed" not in states, "a half-copied folder was tried"
    assert "service_model_load_failures_total{" not in metrics
    assert positive_of(answer) == pytest.approx(expected_positive("good good bad", 2), abs=TOLERANCE)


# -- failed, deleted and retired versions -----------------------------------------------------------


async def test_a_broken_new_version_is_reported_and_never_replaces_the_working_one(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
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
        await asyncio.sleep(0.5)  # five more polls of an unchanged folder
        answer = await http.post("/sentiment", json={"text": "good"})
        metrics = (await http.get("/metrics")).text
        # A broken version does not hold back the next one.
        await asyncio.to_thread(_publish, live_artifacts, "tiny-text", 4, tmp_path / "staging")

        async def version_4_answers() -> bool:
            return (await http.post("/sentiment", json={"text": "good"})).headers["x-model-version"] == "4"

        await _until(version_4_answers, "version 4 to be served", 30)
    failed = next(v for v in versions if v["version"] == 3)
    assert failed["state"] == "failed" and "tiny-text/3: cannot load the SavedModel" in failed["error"]
    assert answer.status_code == 200 and answer.json()["version"] == 1
    # Tried once: a folder that failed is not loaded again until it changes.
    assert 'service_model_load_failures_total{model="tiny-text"} 1.0' in metrics
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("could not load tiny-text version 3: "), errors
    assert "cannot load the SavedModel" in errors[0]


async def test_a_failed_version_fixed_in_place_is_served_and_later_listed_as_available_not_failed(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.1))
    folder = live_artifacts / "tiny-text" / "3"
    async with serving(app) as http:

        async def state_of_3() -> str | None:
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            return next((v["state"] for v in versions if v["version"] == 3), None)

        async def served_by(version: int) -> bool:
            return (await http.post("/sentiment", json={"text": "good"})).headers["x-model-version"] == str(version)

        good = tmp_path / "good" / "tiny-text" / "3"
        build_text_model(good)
        shutil.copytree(good, tmp_path / "broken")
        (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(tmp_path / "broken", folder)
        await _until(lambda: _equals(state_of_3(), "failed"), "version 3 to fail")
        # Mended where it lies: the folder changes, so it is tried again, and loads.
        shutil.copy2(good / "saved_model.pb", folder / "saved_model.pb")
        await _until(lambda: served_by(3), "the mended version 3 to be served", 30)
        for version in (4, 5):  # two newer versions retire it (two versions stay loaded)
            await asyncio.to_thread(_publish, live_artifacts, "tiny-text", version, tmp_path / "staging")
            await _until(lambda version=version: served_by(version), f"version {version} to be served", 30)
        await _until(lambda: _equals(state_of_3(), "available"), "version 3 to be listed as available", 30)


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_a_new_version_of_another_kind_is_reported_and_never_served(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.1))
    async with serving(app) as http:
        # An image model published as version 2 of a text model.
        await asyncio.to_thread(_publish, live_artifacts, "tiny-text", 2, tmp_path / "staging", build_image_model)

        async def reported() -> bool:
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            return any(v["state"] == "failed" for v in versions)

        await _until(reported, "version 2 to be reported as failed", 30)
        versions = (await http.get("/models/tiny-text")).json()["versions"]
        answer = await http.post("/sentiment", json={"text": "good"})
    assert versions[1]["error"] == (f"{live_artifacts / 'tiny-text' / '2'}: task 'image-classification' differs "
                                    "from the served versions'")
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"


async def test_a_new_version_that_loads_but_fails_its_warm_up_is_reported_and_never_served(
    make_settings: Callable[..., Settings], live_artifacts: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(artifacts_dir=live_artifacts, reload_interval_s=0.1))
    async with serving(app) as http:
        await asyncio.to_thread(_publish, live_artifacts, "tiny-text", 2, tmp_path / "staging", fail_always=True)

        async def reported() -> bool:
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            return any(v["state"] == "failed" for v in versions)

        await _until(reported, "version 2 to be reported as failed", 30)
        versions = (await http.get("/models/tiny-text")).json()["versions"]
        answers = [await http.post("/sentiment", json={"text": "good"}) for _ in range(3)]
        metrics = (await http.get("/metrics")).text
    failed = next(v for v in versions if v["version"] == 2)
    assert "tiny-text/2: the warm-up batch failed" in failed["error"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "serving"), (2, "failed")]
    for answer in answers:
        assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"
        assert positive_of(answer) == pytest.approx(expected_positive("good", 1), abs=TOLERANCE)
    assert 'service_model_load_failures_total{model="tiny-text"} 1.0' in metrics
    assert 'service_model_version_loaded{model="tiny-text",version="2"}' not in metrics


async def test_a_version_deleted_from_disk_while_loaded_is_retired_unless_it_is_the_last(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    root = tmp_path / "artifacts"
    for version in ("1", "2"):
        shutil.copytree(artifacts_dir / "tiny-text" / version, root / "tiny-text" / version)
    # Monitoring off: retiring a version must not need its monitor.
    app = create_app(make_settings(artifacts_dir=root, reload_interval_s=0.1, model_versions=2, monitoring=False))
    async with serving(app) as http:
        assert (await http.post("/sentiment", json={"text": "good"})).headers["x-model-version"] == "2"
        shutil.rmtree(root / "tiny-text" / "2")

        async def version_2_gone() -> bool:
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            return [(v["version"], v["state"]) for v in versions] == [(1, "serving")]

        await _until(version_2_gone, "version 2 to be retired", 30)
        newest = await http.post("/sentiment", json={"text": "good"})
        pinned = await http.post("/sentiment", json={"text": "good", "version": 2})
        loaded_gauges = [line for line in (await http.get("/metrics")).text.splitlines()
                         if line.startswith("service_model_version_loaded{")]
        shutil.rmtree(root / "tiny-text" / "1")  # the last version: it keeps serving from memory
        await asyncio.sleep(0.5)
        last = await http.post("/sentiment", json={"text": "good"})
        # Nor does it go when the only version on disk is one that cannot be loaded.
        broken = shutil.copytree(artifacts_dir / "tiny-text" / "2", tmp_path / "broken" / "3")
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(broken, root / "tiny-text" / "3")

        async def version_3_failed() -> bool:
            versions = (await http.get("/models/tiny-text")).json()["versions"]
            return any(v["version"] == 3 and v["state"] == "failed" for v in versions)

        await _until(version_3_failed, "version 3 to fail", 30)
        await asyncio.sleep(0.3)  # and a few polls more
        still = await http.post("/sentiment", json={"text": "good"})
    assert newest.headers["x-model-version"] == "1"
    assert positive_of(newest) == pytest.approx(expected_positive("good", 1), abs=TOLERANCE)
    assert pinned.status_code == 404 and "loaded versions: 1" in pinned.json()["error"]["accepted"]
    assert last.status_code == 200 and last.headers["x-model-version"] == "1"
    assert still.status_code == 200 and still.headers["x-model-version"] == "1"
    assert loaded_gauges == ['service_model_version_loaded{model="tiny-text",version="1"} 1.0']
    assert "retiring tiny-text version 2 (removed from disk)" in caplog.messages


async def test_with_two_workers_readiness_waits_for_both_and_a_draining_worker_takes_its_mark_back(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SHARED_DIR_ENV, str(tmp_path))  # what `python -m service` sets up for its workers
    app = create_app(make_settings(workers=2))
    async with serving(app) as http:
        alone = (await http.get("/readyz")).status_code
        (tmp_path / f"ready-{os.getppid()}").touch()  # the other worker: a live process that says it is ready
        both = (await http.get("/readyz")).status_code
        app.state.registry.begin_draining()
        marks = sorted(path.name for path in tmp_path.glob("ready-*"))
    assert (alone, both) == (503, 200)
    assert marks == [f"ready-{os.getppid()}"]  # this worker's mark went when it began draining


async def test_requests_still_queued_when_the_app_shuts_down_are_answered_before_the_models_go(
    make_settings: Callable[..., Settings],
) -> None:
    # One model call per request: a queue forms behind "slow". A busy machine must not turn waits into 504s.
    app = create_app(make_settings(max_batch_size=1, request_timeout_s=120))
    texts = ["good", "bad", "good good", "bad bad good"]

    async def queued(http: httpx.AsyncClient) -> bool:
        depth = [line for line in (await http.get("/metrics")).text.splitlines()
                 if line.startswith('service_batch_queue_depth{model="tiny-text",version="2"}')]
        return bool(depth) and float(depth[0].split()[-1]) >= len(texts)

    async with app.router.lifespan_context(app):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        requests = [asyncio.ensure_future(http.post("/sentiment", json={"text": text})) for text in ["slow", *texts]]
        await _until(lambda: queued(http), "the texts to queue up behind the slow one", 30)
    # The lifespan has ended (the registry is closed); every queued request was answered by the model first.
    answers = await asyncio.gather(*requests)
    await http.aclose()
    assert [answer.status_code for answer in answers] == [200] * 5
    for text, answer in zip(texts, answers[1:], strict=True):
        assert positive_of(answer) == pytest.approx(expected_positive(text, 2), abs=TOLERANCE)


async def test_draining_turns_readiness_503_and_refuses_new_requests(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    app = create_app(make_settings())
    async with serving(app) as http:
        before = await http.post("/sentiment", json={"text": "good"})
        assert (await http.get("/readyz")).status_code == 200
        v2_ready = await http.get("/v2/health/ready")
        app.state.registry.begin_draining()
        app.state.registry.begin_draining()  # SIGTERM, then Ctrl-C
        ready = await http.get("/readyz")
        v2_not_ready = await http.get("/v2/health/ready")
        refused = await http.post("/sentiment", json={"text": "good"})
    assert "close" not in before.headers.get("connection", "")
    assert ready.status_code == 503
    assert (v2_ready.status_code, v2_ready.json(), v2_not_ready.status_code, v2_not_ready.json()) == \
        (200, {"ready": True}, 400, {"ready": False})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["message"] == "the service is shutting down"
    drain = "draining: readiness is 503, new requests are refused, queued ones are answered"
    assert caplog.messages.count(drain) == 1
    # Keep-alive clients are told to stop reusing a connection the server is about to close.
    assert ready.headers["connection"] == "close" and refused.headers["connection"] == "close"
