"""The scorer's answers are the API's: the same inputs through /sentiment and /classify-image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.images import jpeg_rotated_by_exif, png_16bit_grey, solid
from tests.service.score.conftest import read_rows, write_texts

TEXTS = ["good", "bad bad", "good good good bad", "très good 😀 ✓ 日本語", "nothing either way",
         "GOOD\nbad\ngood", "bad " * 100, "good " * 3000]


def test_texts_get_the_labels_and_probabilities_of_post_sentiment(score: Callable, tmp_path: Path,
                                                                 client: TestClient) -> None:
    response = client.post("/sentiment", json={"texts": TEXTS, "model": "tiny-text"})
    assert response.status_code == 200, response.text
    api = response.json()
    source = write_texts(tmp_path / "in.parquet", [{"text": text} for text in TEXTS])
    run = score("tiny-text", source, "--output", tmp_path / "out.jsonl", "--batch-size", 3)
    assert run.status == 0, run.stderr
    rows = read_rows(tmp_path / "out.jsonl")
    assert len(rows) == len(api["results"])
    for row, answer in zip(rows, api["results"], strict=True):
        assert (row["model"], row["version"]) == (api["model"], api["version"])
        assert row["label"] == answer["label"]
        for label, probability in answer["probabilities"].items():
            assert row[f"probability_{label}"] == pytest.approx(probability, abs=1e-5)
        assert row["probability"] == pytest.approx(answer["probabilities"][answer["label"]], abs=1e-5)


def test_a_pinned_version_agrees_with_the_api_pinned_to_it(score: Callable, tmp_path: Path,
                                                          client: TestClient) -> None:
    api = client.post("/sentiment", json={"texts": TEXTS[:3], "model": "tiny-text", "version": 1}).json()
    source = write_texts(tmp_path / "in.csv", [{"text": text} for text in TEXTS[:3]])
    assert score("tiny-text", source, "--output", tmp_path / "out.csv", "--version", 1).status == 0
    rows = read_rows(tmp_path / "out.csv")
    assert [(row["model"], row["version"]) for row in rows] == [(api["model"], api["version"])] * 3
    assert [row["probability_positive"] for row in rows] == pytest.approx(
        [answer["probabilities"]["positive"] for answer in api["results"]], abs=1e-5)


def test_images_get_the_labels_and_probabilities_of_post_classify_image(score: Callable, tmp_path: Path,
                                                                       client: TestClient) -> None:
    images = {
        "0-red.png": solid("red"),
        "1-green.jpg": solid("green", fmt="JPEG"),
        "2-blue.webp": solid("blue", fmt="WEBP"),
        "3-palette.gif": solid("red", fmt="GIF"),
        "4-grey16.png": png_16bit_grey(40000),
        "5-rotated.jpg": jpeg_rotated_by_exif(),
        "6-exact-size.jpg": solid("blue", (8, 8), fmt="JPEG"),  # the fast JPEG path
        "7-grey.bmp": solid("green", fmt="BMP", mode="L"),
    }
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in images.items():
        (folder / name).write_bytes(data)
    files = [("file", (name, data, "application/octet-stream")) for name, data in images.items()]
    response = client.post("/classify-image", files=files, params={"top_k": 3})
    assert response.status_code == 200, response.text
    api = response.json()
    run = score("tiny-image", folder, "--output", tmp_path / "out.parquet", "--batch-size", 3)
    assert run.status == 0, run.stderr
    rows = read_rows(tmp_path / "out.parquet")
    assert [row["path"] for row in rows] == [answer["filename"] for answer in api["results"]]
    for row, answer in zip(rows, api["results"], strict=True):
        assert (row["model"], row["version"], row["error"]) == (api["model"], api["version"], None)
        assert row["label"] == answer["label"]
        assert row["probability"] == pytest.approx(answer["probability"], abs=1e-5)
        for entry in answer["top_k"]:
            assert row[f"probability_{entry['label']}"] == pytest.approx(entry["probability"], abs=1e-5)
