"""Start-up: settings that are checked with a fix in the message, and artifacts that are refused."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.core.registry import StartupError
from service.core.workers import GIL_SWITCH_INTERVAL_S
from service.settings import Settings
from tests.service.images import solid
from tests.tiny_models import MISMATCHES, build_mismatched_model, build_text_model


def start(settings: Settings) -> None:
    with TestClient(create_app(settings)):
        pass


def test_settings_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SERVICE_MAX_BATCH_DELAY_MS", "2.5")
    settings = Settings()
    assert settings.max_batch_size == 7 and settings.max_batch_delay_ms == 2.5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": 64, "queue_limit": 32}, "SERVICE_QUEUE_LIMIT (32) must be at least SERVICE_MAX_BATCH_SIZE"),
        ({"max_batch_delay_ms": 500, "request_timeout_s": 0.2}, "must be shorter than SERVICE_REQUEST_TIMEOUT_S"),
        ({"port": 70000}, "port"),
        ({"log_level": "loud"}, "log_level"),
    ],
)
def test_wrong_settings_are_refused_with_a_message_that_says_how_to_fix_them(values, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Settings(**values)


def test_a_missing_artifacts_folder_is_a_start_up_error_naming_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(StartupError, match=str(missing)):
        start(make_settings(artifacts_dir=missing))


def test_a_model_folder_without_versions_is_a_start_up_error(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(StartupError, match="empty-model: no version folders"):
        start(make_settings(artifacts_dir=tmp_path))


def test_an_empty_artifacts_folder_is_a_start_up_error(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="holds no models"):
        start(make_settings(artifacts_dir=tmp_path))


@pytest.fixture
def copied_text_model(artifacts_dir: Path, tmp_path: Path) -> Path:
    version_dir = tmp_path / "tiny-text" / "2"
    shutil.copytree(artifacts_dir / "tiny-text" / "2", version_dir)
    return version_dir


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: (d / "model.json").unlink(), "no model card"),
        (lambda d: (d / "model.json").write_text("{not json"), "not valid JSON"),
        (lambda d: _edit_card(d, labels=["only-one"]), "malformed model card"),
        (lambda d: _edit_card(d, task="image-classification"), "malformed model card"),
        (lambda d: _edit_card(d, labels=["a", "b", "c"]), "must have 3 classes"),
        (lambda d: _edit_card(d, version=9), "card says tiny-text/9"),
        (lambda d: (d / "saved_model.pb").unlink(), "no saved_model.pb"),
        (lambda d: (d / "saved_model.pb").write_bytes(b"garbage"), "cannot load the SavedModel"),
    ],
    ids=["no-card", "bad-json", "one-label", "wrong-task", "label-count", "wrong-version", "no-pb", "corrupt-pb"],
)
def test_a_malformed_artifact_is_a_start_up_error_naming_the_folder(
    make_settings: Callable[..., Settings], copied_text_model: Path, breakage, message: str
) -> None:
    breakage(copied_text_model)
    with pytest.raises(StartupError, match=re.escape(message)) as error:
        start(make_settings(artifacts_dir=copied_text_model.parent.parent))
    assert str(copied_text_model) in str(error.value)


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("input name", "signature needs one input 'images' (uint8), has {'pixels': 'uint8'}"),
        ("input dtype", "signature needs one input 'images' (uint8), has {'images': 'float32'}"),
        ("no serving_default", "no 'serving_default' signature"),
        ("image size", "input shape (None, 16, 16, 3) does not match the card's [None, 8, 8, 3]"),
    ],
)
def test_a_savedmodel_whose_signature_differs_from_its_card_is_a_start_up_error(
    make_settings: Callable[..., Settings], tmp_path: Path, problem: str, message: str
) -> None:
    assert problem in MISMATCHES
    version_dir = build_mismatched_model(tmp_path / "tiny-image" / "1", problem)
    with pytest.raises(StartupError) as error:
        start(make_settings(artifacts_dir=tmp_path))
    assert str(error.value) == f"{version_dir}: {message}"


def test_a_newest_version_that_fails_its_warm_up_is_a_start_up_error(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    build_text_model(tmp_path / "tiny-text" / "1", fail_always=True)
    with pytest.raises(StartupError, match=re.escape(f"{tmp_path}/tiny-text/1: the warm-up batch failed")):
        start(make_settings(artifacts_dir=tmp_path))


def test_a_new_model_folder_is_served_under_its_name(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    build_text_model(tmp_path / "reviews" / "3")
    with TestClient(create_app(make_settings(artifacts_dir=tmp_path, default_sentiment_model="absent"))) as client:
        body = client.post("/sentiment", json={"text": "good"}).json()  # the one text model is the default
        assert (body["model"], body["version"]) == ("reviews", 3)


def test_before_the_models_are_loaded_both_readiness_probes_say_not_ready(
    make_settings: Callable[..., Settings],
) -> None:
    not_started = TestClient(create_app(make_settings()))  # no `with`: the lifespan has not run
    assert not_started.get("/readyz").status_code == 503
    v2 = not_started.get("/v2/health/ready")
    assert (v2.status_code, v2.json()) == (400, {"ready": False})


def test_the_configured_default_text_model_answers_among_several_and_a_missing_kind_is_a_404(
    make_settings: Callable[..., Settings], artifacts_dir: Path, tmp_path: Path
) -> None:
    build_text_model(tmp_path / "a-text" / "1")  # listed before tiny-text
    shutil.copytree(artifacts_dir / "tiny-text" / "2", tmp_path / "tiny-text" / "2")
    with TestClient(create_app(make_settings(artifacts_dir=tmp_path, default_sentiment_model="tiny-text"))) as client:
        body = client.post("/sentiment", json={"text": "good"}).json()
        unknown = client.post("/sentiment", json={"text": "good", "model": "nope"}).json()["error"]
        image = client.post("/classify-image", content=solid("red"), headers={"Content-Type": "image/png"})
    assert (body["model"], body["version"]) == ("tiny-text", 2)
    assert unknown["accepted"] == "one of: a-text, tiny-text"
    assert image.status_code == 404
    error = image.json()["error"]
    assert (error["message"], error["accepted"]) == ("no image-classification model is loaded", "one of: none")


def test_a_request_timeout_shorter_than_the_warm_up_holds_for_requests_but_not_for_the_warm_up(
    make_settings: Callable[..., Settings],
) -> None:
    # TensorFlow's first call on a version takes far longer than a millisecond.
    settings = make_settings(request_timeout_s=0.001, max_batch_delay_ms=0)
    with TestClient(create_app(settings)) as client:
        response = client.post("/sentiment", json={"text": "slow"})  # a model call of a second or more
    assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"


def _edit_card(version_dir: Path, **changes) -> None:
    card = json.loads((version_dir / "model.json").read_text())
    (version_dir / "model.json").write_text(json.dumps(card | changes))


def test_the_benchmark_knows_the_largest_batch_the_service_forms_by_default() -> None:
    from loadtests.bench import SERVED_BATCH  # the benchmark imports nothing of the service's, so it keeps a copy

    assert Settings.model_fields["max_batch_size"].default == SERVED_BATCH


def test_while_serving_the_gil_changes_hands_sooner_and_the_interval_is_put_back_after(
    make_settings: Callable[..., Settings],
) -> None:
    before = sys.getswitchinterval()
    assert before != GIL_SWITCH_INTERVAL_S
    with TestClient(create_app(make_settings())) as client:
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
        assert client.post("/sentiment", json={"text": "good"}).status_code == 200
    assert sys.getswitchinterval() == before
