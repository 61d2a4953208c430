"""The Open Inference Protocol, spoken by a client nobody here wrote: tritonclient[http]."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from loadtests.server import running_service
from tests.tiny_models import IMAGE_SIZE, expected_positive

pytestmark = pytest.mark.live  # a real `python -m service` process


@pytest.fixture(scope="module")
def server(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[triton.InferenceServerClient]:
    log_path = tmp_path_factory.mktemp("oip") / "service.log"
    with running_service(artifacts_dir, log_path, default_sentiment_model="tiny-text") as service:
        client = triton.InferenceServerClient(service.base_url.removeprefix("http://"))
        yield client
        client.close()


def colour_images() -> np.ndarray:
    images = np.zeros((3, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for index in range(3):
        images[index, :, :, index] = 255  # red, green, blue
    return images


def test_health_and_server_metadata(server: triton.InferenceServerClient) -> None:
    assert server.is_server_live() and server.is_server_ready()
    metadata = server.get_server_metadata()
    assert metadata["name"] and "binary_tensor_data" in metadata["extensions"]


def test_model_readiness_and_metadata(server: triton.InferenceServerClient) -> None:
    assert server.is_model_ready("tiny-text") and server.is_model_ready("tiny-text", "1")
    assert not server.is_model_ready("tiny-text", "9") and not server.is_model_ready("nope")
    image = server.get_model_metadata("tiny-image")
    assert image["platform"] == "tensorflow_savedmodel" and image["versions"] == ["1"]
    assert image["inputs"] == [{"name": "images", "datatype": "UINT8", "shape": [-1, IMAGE_SIZE, IMAGE_SIZE, 3]}]
    assert image["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    text = server.get_model_metadata("tiny-text", "1")
    assert text["inputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [-1]}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_image_inference(server: triton.InferenceServerClient, binary: bool) -> None:
    images = colour_images()
    tensor = triton.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images, binary_data=binary)
    output = triton.InferRequestedOutput("probabilities", binary_data=binary)
    result = server.infer("tiny-image", [tensor], outputs=[output], request_id="r-1")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    assert probabilities.argmax(axis=1).tolist() == [0, 1, 2]
    assert result.get_response()["model_version"] == "1" and result.get_response()["id"] == "r-1"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_text_inference_on_a_pinned_version(server: triton.InferenceServerClient, binary: bool) -> None:
    texts = np.array([b"good good", b"bad", "très good ✓".encode()], dtype=np.object_)
    tensor = triton.InferInput("text", [3], "BYTES")
    tensor.set_data_from_numpy(texts, binary_data=binary)
    pinned = server.infer("tiny-text", [tensor], model_version="1")
    newest = server.infer("tiny-text", [tensor])
    # The versions answer differently: each answer must be its own version's.
    for result, version in ((pinned, 1), (newest, 2)):
        assert result.get_response()["model_version"] == str(version)
        expected = [expected_positive(text.decode(), version) for text in texts]
        np.testing.assert_allclose(result.as_numpy("probabilities")[:, 1], expected, atol=1e-5)


def test_unknown_model_wrong_shape_and_wrong_type_are_protocol_errors(server: triton.InferenceServerClient) -> None:
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"x"], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="no model named 'nope'"):
        server.infer("nope", [text])
    with pytest.raises(InferenceServerException, match="must be UINT8"):
        server.infer("tiny-image", [_renamed(text, "images")])
    wrong_size = triton.InferInput("images", [1, 4, 4, 3], "UINT8")
    wrong_size.set_data_from_numpy(np.zeros((1, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(InferenceServerException, match=r"must have shape \[n, 8, 8, 3\]"):
        server.infer("tiny-image", [wrong_size])


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_explained_texts_get_token_weights_and_offsets_padded_with_minus_one(
    server: triton.InferenceServerClient, binary: bool
) -> None:
    texts = ["so GOOD", "plain words, then good 😀 news"]
    tensor = triton.InferInput("text", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=np.object_), binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary)
               for name in ("probabilities", "token_weights", "token_offsets")]
    result = server.infer("tiny-text", [tensor], outputs=outputs, parameters={"explain": True})
    weights, offsets = result.as_numpy("token_weights"), result.as_numpy("token_offsets")
    assert weights.dtype == np.float32 and offsets.dtype == np.int32
    assert weights.shape == (2, 5) and offsets.shape == (2, 5, 2)  # the longer text has 5 words
    assert (weights[0, 2:] == -1).all() and (offsets[0, 2:] == -1).all()  # the shorter one is padded
    for text, row, spans in zip(texts, weights, offsets, strict=True):
        words = [text[start:end] for start, end in spans if start >= 0]
        assert words[int(row.argmax())].lower() == "good"  # offsets in code points: the emoji counts as one
    assert [text[s:e] for s, e in offsets[1]] == ["plain", "words", "then", "good", "news"]


def test_an_explained_image_gets_a_saliency_grid(server: triton.InferenceServerClient) -> None:
    # Reddish and greenish, SERVICE_EXPLAIN_MAX_ITEMS of them (not pure colours: their probabilities
    # would round to 1 in float32 with a cell or without it)
    images = np.full((2, IMAGE_SIZE, IMAGE_SIZE, 3), 100, dtype=np.uint8)
    images[0, ..., 0] = images[1, ..., 1] = 180
    tensor = triton.InferInput("images", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    result = server.infer("tiny-image", [tensor], parameters={"explain": True})  # no outputs named: all of them
    saliency = result.as_numpy("saliency")
    assert saliency.shape == (2, IMAGE_SIZE, IMAGE_SIZE) and saliency.dtype == np.float32
    assert (saliency > 0).all()  # every cell of a solid colour adds to it
    assert result.as_numpy("probabilities").shape == (2, 3)


def test_explanation_outputs_without_explain_and_a_non_boolean_explain_are_refused(
    server: triton.InferenceServerClient,
) -> None:
    tensor = triton.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"good"], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="with parameters.explain, 'token_weights', 'token_offsets'"):
        server.infer("tiny-text", [tensor], outputs=[triton.InferRequestedOutput("token_weights")])
    with pytest.raises(InferenceServerException, match="parameters.explain must be true or false"):
        server.infer("tiny-text", [tensor], parameters={"explain": "yes"})


def _renamed(tensor: triton.InferInput, name: str) -> triton.InferInput:
    renamed = triton.InferInput(name, tensor.shape(), tensor.datatype())
    renamed.set_data_from_numpy(np.array([b"x"], dtype=np.object_))
    return renamed
