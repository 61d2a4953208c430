"""Explanations over HTTP: word weights for /sentiment, saliency grids for /classify-image, on tiny models
whose right answer is known (the word "good"; the top-left quadrant)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.settings import Settings
from tests.service.api.test_classify_image import assert_error
from tests.service.conftest import serving
from tests.tiny_models import (
    build_quadrant_image_model,
    build_text_model,
    expected_positive,
)
from training.text_preprocessing import normalize

MAX_WORDS = 6


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain-artifacts")
    build_text_model(root / "tiny-text" / "1")
    build_text_model(root / "old-text" / "1", declare_tokenizer=False)
    build_quadrant_image_model(root / "quadrant-image" / "1")
    return root


def settings(artifacts: Path, **overrides: object) -> Settings:
    values = {"artifacts_dir": artifacts, "default_sentiment_model": "tiny-text", "explain_max_words": MAX_WORDS,
              "max_batch_delay_ms": 20.0}
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(artifacts: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(artifacts))) as test_client:
        yield test_client


def explain_text(client: TestClient, text: str, **body: object) -> dict:
    response = client.post("/sentiment", json={"text": text, "explain": True, **body})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    return result


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# -- texts --------------------------------------------------------------------------------------


def test_the_word_that_decides_gets_the_weight_and_the_others_none(client: TestClient) -> None:
    text = "The plot was GOOD, if long"
    result = explain_text(client, text)
    explanation = result["explanation"]
    assert result["label"] == explanation["label"] == "positive"
    assert explanation["method"] == "occlusion" and explanation["spans"] is None
    weights = {t["text"]: t["weight"] for t in explanation["tokens"]}
    assert list(weights) == ["the", "plot", "was", "good", "if", "long"]
    # Without "good" the count is 0: P(positive) falls from sigmoid(1) to 0.5.
    assert weights.pop("good") == pytest.approx(expected_positive("good", 1) - 0.5, abs=1e-5)
    assert all(abs(w) < 1e-6 for w in weights.values())
    good = next(t for t in explanation["tokens"] if t["text"] == "good")
    assert text[good["start"] : good["end"]] == "GOOD"


def test_a_word_that_pushes_away_from_the_label_weighs_less_than_zero(client: TestClient) -> None:
    tokens = explain_text(client, "good good bad")["explanation"]["tokens"]
    assert [t["text"] for t in tokens] == ["good", "good", "bad"]
    assert tokens[0]["weight"] > 0 and tokens[0]["weight"] == pytest.approx(tokens[1]["weight"])
    assert tokens[2]["weight"] < 0  # without "bad", "positive" would be more probable still


@pytest.mark.parametrize("text", [
    "I didn't like it <br /><br />It's a 10/10 &amp; more!!",  # HTML left in a review, clitics, an entity
    "très bien — good 😀👍 good 日本語 e\u0301",  # non-ASCII, emoji, a combining accent
    "good bad good bad good",  # repeated words
])
def test_the_tokens_are_the_models_own_words_with_their_characters(client: TestClient, text: str) -> None:
    tokens = explain_text(client, text)["explanation"]["tokens"]
    graph_words = normalize(tf.constant([text]), social=False).numpy()[0].decode().split()
    assert [t["text"] for t in tokens] == graph_words
    for token in tokens:
        source = text[token["start"] : token["end"]]
        # Each word's characters, lower-cased, are the word (or the entity it came from: "&amp;" is "and").
        assert source.lower() == token["text"] or (source, token["text"]) == ("&amp;", "and"), (source, token)


def test_a_text_longer_than_the_word_limit_is_explained_in_spans(client: TestClient) -> None:
    words = ["plain"] * 11 + ["good"]
    explanation = explain_text(client, " ".join(words))["explanation"]
    assert explanation["spans"] == MAX_WORDS
    tokens = explanation["tokens"]
    assert len(tokens) == len(words)  # every word the model saw, each with its span's weight
    weights = [t["weight"] for t in tokens]
    assert weights[-2] == weights[-1] > 0  # "good" shares its span's weight with its neighbour
    assert all(abs(w) < 1e-6 for w in weights[:-2])


def test_several_texts_are_explained_each_by_its_own_words(client: TestClient) -> None:
    response = client.post("/sentiment", json={"texts": ["bad film", "good film"], "explain": True})
    first, second = response.json()["results"]
    assert (first["label"], second["label"]) == ("negative", "positive")
    assert [t["text"] for t in first["explanation"]["tokens"]] == ["bad", "film"]
    assert first["explanation"]["tokens"][0]["weight"] > 0  # "bad" pushes toward "negative"


def test_without_explain_there_is_no_explanation(client: TestClient) -> None:
    result = client.post("/sentiment", json={"text": "good"}).json()["results"][0]
    assert "explanation" not in result


def test_a_text_with_no_words_has_an_empty_explanation(client: TestClient) -> None:
    assert explain_text(client, "... ---")["explanation"]["tokens"] == []


# -- images -------------------------------------------------------------------------------------


def test_the_saliency_lies_in_the_quadrant_the_model_looks_at(client: TestClient) -> None:
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[..., 2] = 255  # blue everywhere ...
    # ... but the top-left quadrant, the only part the model sees, is reddish (not saturated: P(red) 0.91,
    # so that a grey cell in it lowers the probability by more than float32 rounding)
    pixels[:4, :4] = (160, 120, 120)
    response = client.post("/classify-image?explain=true", files={"file": ("q.png", png(pixels), "image/png")})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    explanation = result["explanation"]
    assert result["label"] == explanation["label"] == "red"
    assert explanation["fill"] == 128
    saliency = np.array(explanation["saliency"])
    assert saliency.shape == (8, 8)  # SERVICE_EXPLAIN_GRID 8 on an 8 x 8 model input: a cell a pixel
    assert (saliency[:4, :4] > 0).all()
    outside = np.ones((8, 8), dtype=bool)
    outside[:4, :4] = False
    assert np.abs(saliency[outside]).max() < 1e-6


def test_a_grid_finer_than_the_image_is_the_images_pixels(artifacts: Path) -> None:
    with TestClient(create_app(settings(artifacts, explain_grid=4))) as client:
        body = png(np.full((8, 8, 3), 200, dtype=np.uint8))
        saliency = client.post("/classify-image?explain=1", content=body,
                               headers={"Content-Type": "image/png"}).json()["results"][0]["explanation"]["saliency"]
        assert np.array(saliency).shape == (4, 4)


# -- bad input ----------------------------------------------------------------------------------


def test_a_version_that_cannot_explain_says_so_and_what_can(client: TestClient) -> None:
    response = client.post("/sentiment", json={"text": "good", "model": "old-text", "explain": True})
    error = assert_error(response, 422, "invalid_input")
    assert error["message"].startswith("old-text version 1 cannot explain") and "input.tokenizer" in error["message"]
    assert "GET /models" in error["accepted"]
    assert client.post("/sentiment", json={"text": "good", "model": "old-text"}).status_code == 200


@pytest.mark.parametrize("explain", ["true", 1, "yes", None, [True], {"on": True}])
def test_explain_must_be_a_boolean(client: TestClient, explain: object) -> None:
    response = client.post("/sentiment", json={"text": "good", "explain": explain})
    assert response.status_code == 422, response.text
    assert "explain" in response.text


def test_an_image_explain_that_is_not_a_boolean_is_refused(client: TestClient) -> None:
    body = png(np.zeros((8, 8, 3), dtype=np.uint8))
    response = client.post("/classify-image?explain=perhaps", content=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 422 and "explain" in response.text


def test_more_texts_to_explain_than_the_limit_are_refused(client: TestClient) -> None:
    response = client.post("/sentiment", json={"texts": ["good", "bad", "good"], "explain": True})
    error = assert_error(response, 422, "invalid_input")
    assert error["message"] == "3 inputs to explain; one request explains at most 2"


def test_more_images_to_explain_than_the_limit_are_refused(client: TestClient) -> None:
    image = png(np.zeros((8, 8, 3), dtype=np.uint8))
    files = [("file", (f"{i}.png", image, "image/png")) for i in range(3)]
    error = assert_error(client.post("/classify-image?explain=true", files=files), 422, "invalid_input")
    assert error["message"] == "3 inputs to explain; one request explains at most 2"
    assert client.post("/classify-image", files=files).status_code == 200


def test_a_too_long_text_is_refused_with_explain_as_without(client: TestClient, artifacts: Path) -> None:
    limit = settings(artifacts).max_text_chars
    response = client.post("/sentiment", json={"text": "good " * (limit // 5 + 1), "explain": True})
    assert response.status_code == 422


def test_an_explanation_larger_than_the_queue_limit_is_refused_in_words_not_queued(artifacts: Path) -> None:
    with TestClient(create_app(settings(artifacts, queue_limit=64, explain_max_words=40))) as small:
        response = small.post("/sentiment", json={"texts": ["good " * 40, "bad " * 40], "explain": True})
        error = assert_error(response, 413, "payload_too_large")
        assert error["message"] == "explaining these inputs takes 80 model rows, over the queue limit of 64"
        assert small.post("/sentiment", json={"text": "good " * 40, "explain": True}).status_code == 200


def test_models_says_which_versions_can_explain(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert models["tiny-text"]["versions"][0]["explains"] is True
    assert models["old-text"]["versions"][0]["explains"] is False


# -- batching -----------------------------------------------------------------------------------


async def test_explained_and_plain_requests_share_batches_and_each_gets_its_own_answer(artifacts: Path) -> None:
    app = create_app(settings(artifacts, max_batch_delay_ms=200.0, max_batch_size=64))
    texts = ["good", "bad bad", "good good good", "plain words", "bad good bad"]
    async with serving(app) as http:
        requests = [http.post("/sentiment", json={"text": t, "explain": i % 2 == 0}) for i, t in enumerate(texts)]
        responses = await asyncio.gather(*requests)
    batch_sizes = set()
    for i, (text, response) in enumerate(zip(texts, responses, strict=True)):
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert result["probabilities"]["positive"] == pytest.approx(expected_positive(text, 1), abs=1e-5)
        assert ("explanation" in result) == (i % 2 == 0)
        batch_sizes.add(int(response.headers["X-Batch-Size"]))
    # One batch held the plain texts, the explained ones and their variants: 5 texts + 1 + 3 + 3 variants.
    assert batch_sizes == {12}
