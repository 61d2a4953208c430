"""The JSON bodies the API reads and writes (what /docs shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LabelProbability(BaseModel):
    label: str
    probability: float


class ImageResult(BaseModel):
    filename: str | None = Field(None, description="The multipart part's file name, when it had one.")
    label: str
    probability: float
    top_k: list[LabelProbability]


class ImageClassificationResponse(BaseModel):
    model: str
    version: int
    results: list[ImageResult] = Field(description="One per image, in the order they were sent.")


class SentimentRequest(BaseModel):
    """Send one `text` or a list of `texts`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "A wonderful, moving film."},
                                        {"texts": ["Loved it", "Dull."], "model": "sentiment-tweets"}]},
    )

    text: str | None = Field(None, description="One text.")
    texts: list[str] | None = Field(None, description="Several texts, answered in the same order.")
    model: str | None = Field(None, description="Model name; the default sentiment model when absent.")


class TextResult(BaseModel):
    label: str
    probabilities: dict[str, float] = Field(description="Every class's probability.")


class SentimentResponse(BaseModel):
    model: str
    version: int
    results: list[TextResult]


class VersionInfo(BaseModel):
    version: int
    state: str = Field(description="'serving' for the loaded version, 'available' for others on disk.")
    card: dict[str, Any] | None = Field(None, description="The model card of a loaded version.")


class ModelInfo(BaseModel):
    name: str
    task: str
    labels: list[str]
    serving_version: int
    default: bool = Field(description="Whether requests that name no model get this one.")
    versions: list[VersionInfo]


class ModelList(BaseModel):
    models: list[ModelInfo]


class Status(BaseModel):
    status: str
