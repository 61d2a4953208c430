"""Prediction monitoring and drift through the app, on the tiny models with a reference in their cards.

The reference is made the way training makes it: the model's own predictions on a sample, and the
sample's input summaries, binned with contract.monitoring. Replaying more inputs drawn the same way
keeps every score low; a stream of one kind only (negative texts, red images) drives it past the
threshold, in /models and in /metrics.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from contract.monitoring import CONFIDENCE_EDGES, histogram_share
from contract.savedmodel import load_model
from service.app import create_app
from service.core import monitoring
from service.settings import Settings
from tests.service.conftest import serving
from tests.tiny_models import build_image_model, build_text_model

WINDOW = 200
TEXT_LENGTH_EDGES = [0, 20, 40, 80, 160, None]
SIDE_EDGES = [0, 16, 32, 64, None]
FILLER = ["the", "film", "plot", "acting", "was", "and", "a", "story"]
SIZES = [(20, 12), (32, 32), (64, 48), (12, 20)]


def review(rng: np.random.Generator, words: tuple[str, ...] = ("good", "bad")) -> str:
    """A few filler words and a few sentiment words: as many good as bad ones on average."""
    chosen = list(rng.choice(FILLER, rng.integers(2, 12))) + list(rng.choice(words, rng.integers(0, 4)))
    rng.shuffle(chosen)
    return " ".join(chosen)


def picture(rng: np.random.Generator, colour: tuple[int, int, int] | None = None) -> bytes:
    size = SIZES[rng.integers(len(SIZES))]
    fill = colour or tuple(int(c) for c in rng.integers(0, 256, 3))
    buffer = io.BytesIO()
    Image.new("RGB", size, fill).save(buffer, format="PNG")
    return buffer.getvalue()


def _reference(version_dir: Path, rows: object, labels: list[str], inputs: dict[str, tuple[list, list]]) -> dict:
    outputs = load_model(version_dir).predict(rows)
    predicted = outputs.argmax(axis=1)
    return {
        "split": "a sample drawn like the tests' replay",
        "predicted_label_share": {label: float(np.mean(predicted == i)) for i, label in enumerate(labels)},
        "top1_probability": {"edges": list(CONFIDENCE_EDGES),
                                 "share": histogram_share(outputs.max(axis=1), CONFIDENCE_EDGES)},
        "input": {signal: {"edges": edges, "share": histogram_share(values, edges)}
                  for signal, (values, edges) in inputs.items()},
    }


def _add_reference(version_dir: Path, reference: dict) -> None:
    card_path = version_dir / "model.json"
    card = json.loads(card_path.read_text())
    card["monitoring"] = {"reference": reference}
    card_path.write_text(json.dumps(card))


@pytest.fixture(scope="module")
def artifacts_with_references(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-text/1 and tiny-image/1 with references; tiny-plain/1, a text model whose card has none."""
    root = tmp_path_factory.mktemp("drift-artifacts")
    rng = np.random.default_rng(2024)
    text_dir = build_text_model(root / "tiny-text" / "1")
    texts = [review(rng) for _ in range(2000)]
    _add_reference(text_dir, _reference(text_dir, [t.encode() for t in texts], ["negative", "positive"],
                                        {"text_length_chars": ([len(t) for t in texts], TEXT_LENGTH_EDGES)}))
    image_dir = build_image_model(root / "tiny-image" / "1")
    images = [picture(rng) for _ in range(600)]
    decoded = [Image.open(io.BytesIO(data)) for data in images]
    pixels = np.stack([np.asarray(image.resize((8, 8), Image.Resampling.BILINEAR)) for image in decoded])
    _add_reference(image_dir, _reference(image_dir, pixels, ["red", "green", "blue"], {
        "image_width": ([image.width for image in decoded], SIDE_EDGES),
        "image_height": ([image.height for image in decoded], SIDE_EDGES),
    }))
    build_text_model(root / "tiny-plain" / "1")
    return root


@pytest.fixture()
def client(artifacts_with_references: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(monitoring, "REFRESH_S", 0.0)  # publish the gauge at every batch, not once a second
    settings = Settings(artifacts_dir=artifacts_with_references, default_sentiment_model="tiny-text",
                        drift_window=WINDOW, reload_interval_s=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _send_texts(client: TestClient, make: Callable[[], str], count: int, model: str = "tiny-text") -> None:
    for _ in range(count // 50):
        response = client.post("/sentiment", json={"texts": [make() for _ in range(50)], "model": model})
        assert response.status_code == 200, response.text


def _send_images(client: TestClient, make: Callable[[], bytes], count: int) -> None:
    for _ in range(count // 8):
        files = [("file", (f"{i}.png", make(), "image/png")) for i in range(8)]
        assert client.post("/classify-image", files=files).status_code == 200


def _monitoring(client: TestClient, model: str) -> dict:
    versions = client.get(f"/models/{model}").json()["versions"]
    return next(v for v in versions if v["version"] == 1)["monitoring"]


def _gauge(client: TestClient, model: str, signal: str) -> float | None:
    pattern = rf'service_prediction_drift\{{model="{model}",signal="{signal}",version="1"\}} (\S+)'
    match = re.search(pattern, client.get("/metrics").text)
    return float(match.group(1)) if match else None


def test_texts_drawn_like_the_reference_score_low_and_only_negative_ones_drift(client: TestClient) -> None:
    rng = np.random.default_rng(7)  # not the reference's seed: new texts, drawn the same way
    _send_texts(client, lambda: review(rng), 150)
    partial = _monitoring(client, "tiny-text")
    assert partial["predictions_in_window"] == 150 and set(partial["drift"].values()) == {None}
    assert _gauge(client, "tiny-text", "predicted_label") is None  # no score before the window is full

    _send_texts(client, lambda: review(rng), 250)
    replayed = _monitoring(client, "tiny-text")
    print("replayed texts:", replayed["drift"])
    assert replayed["window"] == WINDOW and replayed["reference_split"]
    assert set(replayed["drift"]) == {"predicted_label", "confidence", "text_length_chars"}
    assert all(score < 0.1 for score in replayed["drift"].values()), replayed
    assert replayed["drifting"] == []
    assert _gauge(client, "tiny-text", "predicted_label") == pytest.approx(replayed["drift"]["predicted_label"],
                                                                           abs=1e-6)

    _send_texts(client, lambda: review(rng, words=("bad",)), WINDOW)  # only negative reviews
    shifted = _monitoring(client, "tiny-text")
    print("only negative texts:", shifted["drift"])
    assert shifted["drift"]["predicted_label"] > shifted["threshold"] == 0.25
    assert "predicted_label" in shifted["drifting"] and "confidence" in shifted["drifting"]
    assert shifted["drift"]["text_length_chars"] < 0.25  # the texts are neither longer nor shorter than before
    gauge = _gauge(client, "tiny-text", "predicted_label")
    assert gauge is not None and gauge > 0.25


def test_images_drawn_like_the_reference_score_low_and_only_red_ones_drift(client: TestClient) -> None:
    rng = np.random.default_rng(11)
    _send_images(client, lambda: picture(rng), 2 * WINDOW)
    replayed = _monitoring(client, "tiny-image")
    print("replayed images:", replayed["drift"])
    assert set(replayed["drift"]) == {"predicted_label", "confidence", "image_width", "image_height"}
    assert all(score < 0.1 for score in replayed["drift"].values()), replayed

    _send_images(client, lambda: picture(rng, colour=(230, 20, 20)), WINDOW)
    shifted = _monitoring(client, "tiny-image")
    print("only red images:", shifted["drift"])
    assert "predicted_label" in shifted["drifting"]
    assert shifted["drift"]["image_width"] < 0.1  # same sizes as before
    metrics = client.get("/metrics").text
    assert 'service_predictions_total{label="red",model="tiny-image",version="1"}' in metrics
    assert re.search(r'service_input_image_width_pixels_count\{model="tiny-image",version="1"\} 600.0', metrics)


def test_texts_over_the_open_inference_protocol_are_monitored_like_texts_to_sentiment(client: TestClient) -> None:
    rng = np.random.default_rng(13)
    texts = [review(rng) for _ in range(WINDOW)] + ["naïve café"]  # lengths counted in characters, not bytes
    sent = client.post("/sentiment", json={"texts": texts[:50], "model": "tiny-text"})
    assert sent.status_code == 200
    for start in range(50, len(texts), 50):
        chunk = texts[start : start + 50]
        tensor = {"name": "text", "shape": [len(chunk)], "datatype": "BYTES", "data": chunk}
        response = client.post("/v2/models/tiny-text/infer", json={"inputs": [tensor]})
        assert response.status_code == 200, response.text
    monitored = _monitoring(client, "tiny-text")
    assert monitored["predictions_in_window"] == WINDOW  # the window holds the last WINDOW of WINDOW + 1
    assert set(monitored["drift"]) == {"predicted_label", "confidence", "text_length_chars"}
    assert monitored["drift"]["text_length_chars"] is not None and monitored["drift"]["text_length_chars"] < 0.1
    metrics = client.get("/metrics").text
    assert f'service_input_text_length_chars_count{{model="tiny-text",version="1"}} {WINDOW + 1}.0' in metrics
    # "naïve café" is 10 characters (12 bytes): it falls in the (8, 16] bucket either way, so check the sum.
    total = sum(len(text) for text in texts)
    assert f'service_input_text_length_chars_sum{{model="tiny-text",version="1"}} {float(total)}' in metrics


def test_a_model_whose_card_has_no_reference_is_monitored_without_a_score(client: TestClient) -> None:
    rng = np.random.default_rng(3)
    _send_texts(client, lambda: review(rng), WINDOW, model="tiny-plain")
    plain = _monitoring(client, "tiny-plain")
    assert plain["reference_split"] is None and plain["drift"] == {} and plain["predictions_in_window"] == WINDOW
    metrics = client.get("/metrics").text
    assert 'service_prediction_confidence_count{model="tiny-plain",version="1"} 200.0' in metrics
    assert 'service_prediction_drift{model="tiny-plain"' not in metrics


def test_monitoring_can_be_turned_off(artifacts_with_references: Path) -> None:
    settings = Settings(artifacts_dir=artifacts_with_references, default_sentiment_model="tiny-text",
                        monitoring=False, reload_interval_s=0)
    with TestClient(create_app(settings)) as client:
        assert client.post("/sentiment", json={"text": "good"}).status_code == 200
        assert _monitoring(client, "tiny-text") is None
        assert "service_predictions_total{" not in client.get("/metrics").text


async def test_a_retired_versions_drift_scores_go_with_it(
    artifacts_with_references: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitoring, "REFRESH_S", 0.0)
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_with_references / "tiny-text" / "1", root / "tiny-text" / "1")
    settings = Settings(artifacts_dir=root, default_sentiment_model="tiny-text", drift_window=10, model_versions=1,
                        reload_interval_s=0)  # no watcher: the test looks at the folder itself
    app = create_app(settings)
    rng = np.random.default_rng(5)

    def drift_series(metrics: str) -> list[str]:
        return [line for line in metrics.splitlines() if line.startswith('service_prediction_drift{model="tiny-text"')]

    async with serving(app) as http:
        assert (await http.post("/sentiment", json={"texts": [review(rng) for _ in range(10)]})).status_code == 200
        scored = drift_series((await http.get("/metrics")).text)
        newer = shutil.copytree(root / "tiny-text" / "1", tmp_path / "staging" / "2")
        card = json.loads((newer / "model.json").read_text())
        (newer / "model.json").write_text(json.dumps(card | {"version": 2}))
        newer.rename(root / "tiny-text" / "2")
        await app.state.registry.refresh()  # sees version 2
        await app.state.registry.refresh()  # loads it and retires version 1
        after = drift_series((await http.get("/metrics")).text)
    assert scored and all('version="1"' in line for line in scored)  # version 1 had scores (its window was full)
    assert after == []  # a stale score would go on alerting
