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


def _renamed(tensor: triton.InferInput, name: str) -> triton.InferInput:
    renamed = triton.InferInput(name, tensor.shape(), tensor.datatype())
    renamed.set_data_from_numpy(np.array([b"x"], dtype=np.object_))
    return renamed
