"""Served traffic back into training: the log -> the export -> labels filled in -> the real training job -> a model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contract.layout import newest_version_dir
from contract.savedmodel import load_model
from service.app import create_app
from service.payloads.export import export
from service.settings import Settings
from tests.service.images import encode
from tests.service.payloads.test_export import fill_labels
from tests.training.test_image_classifier import TINY as TINY_IMAGE_JOB
from tests.training.test_sentiment import TINY as TINY_TEXT_JOB
from tests.training.tiny_text import write_glove
from training import image_classifier, sentiment

pytestmark = pytest.mark.slow  # each trains a (tiny) model: seconds, not milliseconds


def test_logged_texts_labelled_by_people_train_a_new_sentiment_version(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = tmp_path / "payloads"
    with TestClient(create_app(make_settings(payload_log_dir=folder))) as client:
        for i in range(12):
            texts = [f"a good film, good acting {i}", f"a bad film, bad plot {i}"]
            assert client.post("/sentiment", json={"texts": texts}).status_code == 200
    out = tmp_path / "reviews-to-label.csv"
    assert export([folder], "tiny-text", out).exported == 24
    fill_labels(out)
    version_dir = sentiment.main([
        "--data", str(out), "--text-column", "text", "--label-column", "label",
        "--out", str(tmp_path / "artifacts" / "reviews"), "--run-dir", str(tmp_path / "runs"),
        "--glove", str(write_glove(tmp_path / "glove.tiny.8d.txt", 8)), "--validation-fraction", "0.2",
        *TINY_TEXT_JOB,
    ])
    assert version_dir == tmp_path / "artifacts" / "reviews" / "1"
    assert load_model(version_dir).card.labels == ["negative", "positive"]


def test_logged_images_reviewed_by_people_train_a_new_image_version(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    folder = tmp_path / "payloads"
    with TestClient(create_app(make_settings(payload_log_dir=folder, payload_log_images=True))) as client:
        for shade in range(0, 96, 8):  # 12 distinct images of each colour
            for rgb in ((255, shade, shade), (shade, 255, shade), (shade, shade, 255)):
                image = encode(Image.new("RGB", (20, 12), rgb), "PNG")
                response = client.post("/classify-image", content=image, headers={"Content-Type": "image/png"})
                assert response.status_code == 200
    out = tmp_path / "to-review"
    assert export([folder], "tiny-image", out).exported == 36
    assert sorted(p.name for p in (out / "train").iterdir()) == ["blue", "green", "red"]  # the model's suggestions
    monkeypatch.setattr(image_classifier, "CACHE_DIR", tmp_path / "cache")
    image_classifier.main([
        "--data", str(out), "--out", str(tmp_path / "artifacts" / "colours"), "--work-dir", str(tmp_path / "run"),
        "--image-size", "12", "20", "--epochs", "1", *TINY_IMAGE_JOB,
    ])
    version_dir = newest_version_dir(tmp_path / "artifacts" / "colours")
    assert version_dir.name == "1"
    assert load_model(version_dir).card.labels == ["blue", "green", "red"]
