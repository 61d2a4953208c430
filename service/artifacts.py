"""The artifact contract: `<root>/<model-name>/<version>/` holding a SavedModel and its card.

Training writes these folders and the service reads them. Both sides go through this
module, so the contract (docs/architecture.md, contract 1) is written down in one place:
the card's schema, the signature's names and dtypes, and the checks that tie them together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tensorflow as tf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

IMAGE_TASK = "image-classification"
TEXT_TASK = "text-classification"
CARD_FILE = "model.json"
SIGNATURE_KEY = "serving_default"
OUTPUT_NAME = "probabilities"
INPUT_NAME = {IMAGE_TASK: "images", TEXT_TASK: "text"}
INPUT_DTYPE = {IMAGE_TASK: tf.uint8, TEXT_TASK: tf.string}


class ArtifactError(Exception):
    """An artifact folder that breaks the contract; the message names the folder."""


class ImageInput(BaseModel):
    height: int = Field(gt=0)
    width: int = Field(gt=0)


class TextInput(BaseModel):
    max_tokens: int = Field(gt=0)


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    sha256: str


class TrainingInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str
    seconds: float = Field(ge=0)
    machine: str


class ModelCard(BaseModel):
    """`model.json`: what the model is (for people) and how to feed it (for the service)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int = Field(gt=0)
    task: Literal["image-classification", "text-classification"]
    labels: list[str] = Field(min_length=2)
    input: ImageInput | TextInput
    evaluation: dict[str, Any]
    dataset: DatasetInfo
    training: TrainingInfo
    git_commit: str

    @model_validator(mode="after")
    def _input_matches_task(self) -> ModelCard:
        expected = ImageInput if self.task == IMAGE_TASK else TextInput
        if not isinstance(self.input, expected):
            raise ValueError(f"task {self.task!r} needs input {list(expected.model_fields)}")
        if "split" not in self.evaluation:
            raise ValueError("evaluation must say which split it was measured on ('split')")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self


def list_versions(model_dir: Path) -> list[int]:
    """The version folders (positive integers) under one model's folder, oldest first."""
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def read_card(version_dir: Path) -> ModelCard:
    """Read and check `model.json`; its name and version must match the folder it sits in."""
    card_path = version_dir / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir}: no model card ({CARD_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{card_path}: not valid JSON ({exc})") from None
    except ValidationError as exc:
        raise ArtifactError(f"{card_path}: malformed model card:\n{exc}") from None
    if card.name != version_dir.parent.name or str(card.version) != version_dir.name:
        raise ArtifactError(
            f"{card_path}: card says {card.name}/{card.version}, "
            f"folder is {version_dir.parent.name}/{version_dir.name}"
        )
    return card


@dataclass(frozen=True)
class Artifact:
    """A loaded, checked model version: call `predict` with one batch of inputs."""

    path: Path
    card: ModelCard
    _function: Any  # the concrete `serving_default` function
    _module: Any  # keeps the loaded SavedModel (and its variables) alive

    @property
    def input_name(self) -> str:
        return INPUT_NAME[self.card.task]

    def predict(self, batch: np.ndarray | list[bytes]) -> np.ndarray:
        """One model call: uint8 [n, H, W, 3] images or n UTF-8 texts -> float32 [n, classes]."""
        tensor = tf.constant(batch, dtype=INPUT_DTYPE[self.card.task])
        return self._function(**{self.input_name: tensor})[OUTPUT_NAME].numpy()


def load_artifact(version_dir: Path) -> Artifact:
    """Load one version folder and check that its SavedModel matches its card."""
    card = read_card(version_dir)
    if not (version_dir / "saved_model.pb").is_file():
        raise ArtifactError(f"{version_dir}: no saved_model.pb")
    try:
        module = tf.saved_model.load(str(version_dir))
    except Exception as exc:  # TF raises many types for a broken SavedModel
        raise ArtifactError(f"{version_dir}: cannot load the SavedModel ({exc})") from exc
    function = module.signatures.get(SIGNATURE_KEY)
    if function is None:
        raise ArtifactError(f"{version_dir}: no {SIGNATURE_KEY!r} signature")
    _check_signature(version_dir, card, function)
    return Artifact(path=version_dir, card=card, _function=function, _module=module)


def _check_signature(version_dir: Path, card: ModelCard, function: Any) -> None:
    inputs = function.structured_input_signature[1]
    name, dtype = INPUT_NAME[card.task], INPUT_DTYPE[card.task]
    spec = inputs.get(name)
    if spec is None or len(inputs) != 1 or spec.dtype != dtype:
        found = {k: v.dtype.name for k, v in inputs.items()}
        raise ArtifactError(f"{version_dir}: signature needs one input {name!r} ({dtype.name}), has {found}")
    if card.task == IMAGE_TASK:
        assert isinstance(card.input, ImageInput)
        want = [None, card.input.height, card.input.width, 3]
        if spec.shape.as_list() not in (want, [None, None, None, 3]):
            raise ArtifactError(f"{version_dir}: input shape {spec.shape} does not match card {want}")
    elif spec.shape.as_list() != [None]:
        raise ArtifactError(f"{version_dir}: text input shape {spec.shape} must be [None]")
    output = function.structured_outputs.get(OUTPUT_NAME)
    if output is None or output.shape.as_list()[-1] != len(card.labels):
        raise ArtifactError(
            f"{version_dir}: output {OUTPUT_NAME!r} must have {len(card.labels)} classes "
            f"(one per label), signature has {function.structured_outputs}"
        )
