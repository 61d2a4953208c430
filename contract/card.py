"""`model.json`, the model card: what the model is (for people) and how to feed it (for the service)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract import kinds
from contract.errors import ArtifactError

CARD_FILE = "model.json"


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    sha256: str


class TrainingInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str
    seconds: float = Field(ge=0)
    machine: str


class VerificationInfo(BaseModel):
    """The optional `verification` section: a held-out sample with the float32 model's outputs on it,
    stored in the version folder (the file's format: contract.verification)."""

    model_config = ConfigDict(extra="allow")
    file: str
    count: int = Field(gt=0)
    split: str = Field(min_length=1)  # the split the inputs came from, e.g. "test"
    source: str = Field(min_length=1)  # in words: which inputs, and why they are held out
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reference_runtime: str = Field(min_length=1)  # what computed the outputs: "tensorflow float32"

    @field_validator("file")
    @classmethod
    def _a_file_of_the_folder(cls, name: str) -> str:
        if not name or PurePosixPath(name).name != name or name in (".", "..") or "\\" in name:
            raise ValueError(f"file must be a file name in the version folder, got {name!r}")
        return name


class RepublishedFrom(BaseModel):
    """The optional `republished_from` section: this version's SavedModel is an earlier version's,
    copied byte for byte (training/republish.py), and what this run added and where it ran."""

    model_config = ConfigDict(extra="allow")
    version: int = Field(gt=0)
    saved_model: Literal["unchanged"]
    reason: str = Field(min_length=1)
    files: dict[str, str]  # each copied file (relative path) -> its sha256, the same in both folders
    command: str
    seconds: float = Field(ge=0)
    machine: str
    git_commit: str


class ModelCard(BaseModel):
    """The card's required fields; anything else a job records (figures, plots, settings) is kept."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int = Field(gt=0)
    task: str
    labels: list[str] = Field(min_length=2)
    input: BaseModel  # the kind's own input section (contract.kinds), checked below
    evaluation: dict[str, Any]
    dataset: DatasetInfo
    training: TrainingInfo
    git_commit: str
    verification: VerificationInfo | None = None
    republished_from: RepublishedFrom | None = None

    @model_validator(mode="before")
    @classmethod
    def _input_of_its_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "task" in data:
            kind = kinds.get(str(data["task"]))  # ValueError: unknown task, listing the known ones
            section = data.get("input")
            if not isinstance(section, kind.card_input):
                try:
                    section = kind.card_input.model_validate(section)
                except ValidationError as exc:
                    raise ValueError(f"input for task {kind.task!r}: {exc}") from None
            data = {**data, "input": section}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if "split" not in self.evaluation:
            raise ValueError("evaluation must say which split it was measured on ('split')")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        if self.republished_from is not None and self.republished_from.version >= self.version:
            raise ValueError(
                f"republished_from.version {self.republished_from.version} must be older than {self.version}"
            )
        return self

    @property
    def kind(self) -> kinds.Kind:
        return kinds.get(self.task)

    def to_json(self) -> dict[str, Any]:
        """The card as JSON-ready data, input section included."""
        data = self.model_dump(mode="json")
        data["input"] = self.input.model_dump(mode="json", exclude_unset=True)  # no `tokenizer: null` added
        for optional in ("verification", "republished_from"):  # absent stays absent, as in the file
            if data.get(optional) is None:
                data.pop(optional, None)
        return data


def check_card(card: dict[str, Any] | ModelCard) -> ModelCard:
    """Validate a card; ArtifactError says what is wrong."""
    if isinstance(card, ModelCard):
        return card
    try:
        return ModelCard.model_validate(card)
    except ValidationError as exc:
        raise ArtifactError(f"malformed model card:\n{exc}") from None


def read_card(version_dir: Path, name: str | None = None, version: int | None = None) -> ModelCard:
    """Read and check `model.json`; its name and version must be the folder's (or the ones given)."""
    card_path = version_dir / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir}: no model card ({CARD_FILE})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{card_path}: not valid JSON ({exc})") from None
    except ValidationError as exc:
        raise ArtifactError(f"{card_path}: malformed model card:\n{exc}") from None
    expected = (name or version_dir.parent.name, str(version) if version is not None else version_dir.name)
    if (card.name, str(card.version)) != expected:
        raise ArtifactError(f"{card_path}: card says {card.name}/{card.version}, folder is {'/'.join(expected)}")
    return card


def write_card(version_dir: Path, card: dict[str, Any]) -> ModelCard:
    """Check the card against the contract, then write it as `model.json` (as given, key order kept)."""
    checked = check_card(card)
    (version_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return checked
