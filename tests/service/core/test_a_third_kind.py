"""A kind of model the service was not written for, added from outside: one contract entry, one handler.

Fixed-length numeric vectors (float32 [n, 4]) in, two classes out, served on the Open
Inference Protocol's routes with no change to the service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from contract import kinds
from service.app import create_app
from service.core import handlers
from service.core.handlers import Handler, Prepared
from service.settings import Settings

LENGTH = 4


class VectorInput(BaseModel):
    length: int = Field(gt=0)


VECTORS = kinds.register(
    kinds.Kind(
        task="vector-classification",
        input_name="features",
        dtype=tf.float32,
        card_input=VectorInput,
        item_shape=lambda spec: [spec.length],
    )
)


@handlers.register
class VectorHandler(Handler):
    kind = VECTORS
    v2_datatype = "FP32"

    @staticmethod
    def request_limit(settings: Settings) -> int:
        return settings.max_texts

    def concat(self, pieces: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pieces)

    def warm_up_rows(self, count: int) -> np.ndarray:
        return np.zeros((count, LENGTH), dtype=np.float32)

    def from_tensor(self, tensor: np.ndarray) -> Prepared:
        return Prepared(tensor, summary={})


def build_vector_model(version_dir: Path) -> None:
    """P(second) grows with the last feature minus the first, so answers depend on each row."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, LENGTH], tf.float32, name="features")])
    def serve(features):
        score = features[:, -1] - features[:, 0]
        return {"probabilities": tf.stack([tf.sigmoid(-score), tf.sigmoid(score)], axis=1)}

    module.serve = serve
    version_dir.mkdir(parents=True)
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": serve})
    card = {
        "name": version_dir.parent.name, "version": int(version_dir.name), "task": VECTORS.task,
        "labels": ["first", "last"], "input": {"length": LENGTH},
        "evaluation": {"split": "none (a test model)"}, "dataset": {"name": "none", "sha256": "0" * 64},
        "training": {"command": "built by a test", "seconds": 0, "machine": "test"}, "git_commit": "test",
    }
    (version_dir / "model.json").write_text(json.dumps(card))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("vector-artifacts")
    build_vector_model(root / "tiny-vectors" / "1")
    with TestClient(create_app(Settings(artifacts_dir=root))) as test_client:
        yield test_client


def test_its_metadata_comes_from_its_handler(client: TestClient) -> None:
    metadata = client.get("/v2/models/tiny-vectors").json()
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, LENGTH]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]


def test_it_answers_json_and_binary_tensors_row_by_row(client: TestClient) -> None:
    rows = np.array([[0, 0, 0, 3], [3, 0, 0, 0]], dtype=np.float32)
    tensor = {"name": "features", "shape": [2, LENGTH], "datatype": "FP32"}
    as_json = client.post("/v2/models/tiny-vectors/infer", json={"inputs": [tensor | {"data": rows.ravel().tolist()}]})
    assert as_json.status_code == 200, as_json.text
    probabilities = np.array(as_json.json()["outputs"][0]["data"]).reshape(2, 2)
    assert probabilities.argmax(axis=1).tolist() == [1, 0]

    head = json.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": rows.nbytes}}]}).encode()
    as_binary = client.post("/v2/models/tiny-vectors/infer", content=head + rows.tobytes(),
                            headers={"Inference-Header-Content-Length": str(len(head))})
    assert as_binary.status_code == 200, as_binary.text
    assert as_binary.json()["outputs"][0]["data"] == as_json.json()["outputs"][0]["data"]


def test_its_shape_and_datatype_are_checked_from_its_card(client: TestClient) -> None:
    wrong_length = {"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}
    answer = client.post("/v2/models/tiny-vectors/infer", json={"inputs": [wrong_length]})
    assert answer.status_code == 422 and "[n, 4]" in answer.json()["error"]
    wrong_type = {"name": "features", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]}
    answer = client.post("/v2/models/tiny-vectors/infer", json={"inputs": [wrong_type]})
    assert answer.status_code == 422 and "must be FP32" in answer.json()["error"]
