"""The JSON bodies the API reads and writes (what /docs shows)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator


class LabelProbability(BaseModel):
    label: str
    probability: float


_WEIGHT = ("The predicted label's probability on the input minus its probability with this part left out: "
           "positive pushes toward the label, negative away from it (docs/explanations.md).")


class ImageExplanation(BaseModel):
    label: str = Field(description="The label explained: the predicted one.")
    method: Literal["occlusion"]
    fill: int = Field(description="The grey level (all three channels) a left-out cell is filled with.")
    saliency: list[list[float]] = Field(
        description="Rows of cells, top to bottom, evenly covering the image as the model saw it (resized); each "
        "cell's weight. " + _WEIGHT
    )


class ImageResult(BaseModel):
    filename: str | None = Field(None, description="The multipart part's file name, when it had one.")
    label: str
    probability: float
    top_k: list[LabelProbability]
    explanation: ImageExplanation | None = Field(None, description="Only with explain=true.")


class ImageQuery(BaseModel):
    """The query parameters of POST /classify-image."""

    model: str | None = Field(None, max_length=200, description="Image model; the only one by default.")
    version: int | None = Field(None, ge=1, description="Pin a loaded version; the newest by default.")
    top_k: int = Field(3, ge=1, le=100, description="How many labels to list per image.")
    explain: bool = Field(
        False, description="Add each image's saliency grid (at most SERVICE_EXPLAIN_MAX_ITEMS images per request)."
    )


class ImageClassificationResponse(BaseModel):
    model: str
    version: int
    results: list[ImageResult] = Field(description="One per image, in the order they were sent.")


def _no_nul(text: str) -> str:
    # Pydantic already refuses unpaired surrogates; NUL is valid Unicode but never a real text.
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


def sentiment_request_model(max_texts: int, max_text_chars: int, max_explained: int) -> type[BaseModel]:
    """The /sentiment body, with the limits of these settings written into its schema."""
    text_type = Annotated[
        str,
        Field(max_length=max_text_chars, json_schema_extra={"pattern": "^[^\\u0000]*$"}),
        AfterValidator(_no_nul),
    ]

    class SentimentRequest(BaseModel):
        """Send one `text` or a list of `texts`, and optionally the model's name."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "oneOf": [{"required": ["text"]}, {"required": ["texts"]}],
                # With explain, fewer texts (service.core.explaining checks it for every protocol).
                "if": {"properties": {"explain": {"const": True}}, "required": ["explain"]},
                "then": {"properties": {"texts": {"maxItems": max_explained}}},
                "examples": [{"text": "A moving film."}, {"texts": ["Loved it", "Dull."], "model": "sentiment-tweets"}],
            },
        )

        # Each field may be absent (None: defaults are not validated) but never null, so the
        # types say `str` and the schema offers no null for a fuzzer or client to send.
        text: text_type = Field(None, description="One text.")  # type: ignore[assignment]
        texts: list[text_type] = Field(
            None,  # type: ignore[arg-type]
            min_length=1, max_length=max_texts, description="Several texts, answered in the same order.",
        )
        model: str = Field(  # type: ignore[assignment]
            None, max_length=200, description="Model name; the default sentiment model when absent."
        )
        version: int = Field(  # type: ignore[assignment]
            None, ge=1, description="Pin a loaded version of the model; the newest by default."
        )
        explain: StrictBool = Field(
            False, description=f"Add each text's word weights (at most {max_explained} texts per request)."
        )

        @model_validator(mode="after")
        def _exactly_one(self) -> SentimentRequest:
            if (self.text is None) == (self.texts is None):
                raise ValueError("send exactly one of 'text' or 'texts'")
            return self

        @property
        def all_texts(self) -> list[str]:
            return [self.text] if self.text is not None else list(self.texts or [])

    return SentimentRequest


class WeightedToken(BaseModel):
    text: str = Field(description="The word as the model saw it (normalised: lower-case, clitics split, ...).")
    start: int = Field(description="Where it came from in the request's text: [start, end) in code points "
                       "(Python string indices; JavaScript counts UTF-16 units).")
    end: int
    weight: float = Field(description=_WEIGHT)


class TextExplanation(BaseModel):
    label: str = Field(description="The label explained: the predicted one.")
    method: Literal["occlusion"]
    spans: int | None = Field(
        description="null: each word was left out on its own; a number: the text had more words than "
        "SERVICE_EXPLAIN_MAX_WORDS, so this many spans of consecutive words were, and a span's words share its weight."
    )
    tokens: list[WeightedToken] = Field(description="Every word the model saw, in order (after its truncation).")


class TextResult(BaseModel):
    label: str
    probabilities: dict[str, float] = Field(description="Every class's probability.")
    explanation: TextExplanation | None = Field(None, description="Only with \"explain\": true.")


class SentimentResponse(BaseModel):
    model: str
    version: int
    results: list[TextResult]


class MonitoringInfo(BaseModel):
    """A loaded version's recent predictions against its card's reference (docs/operations/drift.md)."""

    window: int = Field(description="Predictions the drift scores are computed over (SERVICE_DRIFT_WINDOW).")
    predictions_in_window: int = Field(description="How many of them this process has seen so far.")
    reference_split: str | None = Field(description="The split the card's reference was measured on; null: none.")
    threshold: float = Field(description="A score above it means drift (SERVICE_DRIFT_THRESHOLD).")
    drift: dict[str, float | None] = Field(
        description="Population stability index per signal the reference covers; null until the window is full."
    )
    drifting: list[str] = Field(description="The signals whose score is above the threshold.")


class RuntimeInfo(BaseModel):
    """What a loaded version's model calls run on, and why (docs/runtimes.md)."""

    name: str = Field(description="tensorflow (float32, as trained) or a faster runtime, e.g. openvino-bf16.")
    reason: str = Field(description="Why this runtime: what verified, or what each faster one lacked.")
    verification: dict[str, dict[str, Any]] = Field(
        description="Per candidate runtime run on the card's verification sample: its figures against the float32 "
        "reference (top-1 agreement, accuracies, ECEs, largest difference, seconds, failed criteria)."
    )


class VersionInfo(BaseModel):
    version: int
    state: Literal["serving", "loaded", "failed", "available"] = Field(
        description="serving: answers requests that name no version; loaded: answers requests pinned to it; "
        "failed: could not be loaded (see error); available: on disk, not loaded."
    )
    card: dict[str, Any] | None = Field(None, description="The model card of a loaded version.")
    error: str | None = Field(None, description="Why a failed version could not be loaded.")
    monitoring: MonitoringInfo | None = Field(None, description="A loaded version's prediction drift.")
    runtime: RuntimeInfo | None = Field(None, description="A loaded version's runtime.")
    explains: bool | None = Field(None, description="Whether a loaded version can explain its answers.")


class ModelInfo(BaseModel):
    name: str
    task: str
    labels: list[str]
    serving_version: int
    default: bool = Field(description="Whether requests that name no model get this one.")
    versions: list[VersionInfo]


class ModelList(BaseModel):
    models: list[ModelInfo]


class GateInfo(BaseModel):
    gate: str
    status: Literal["pass", "fail", "unknown", "off"] = Field(
        description="unknown: too few candidate requests, or nothing to compare against; never counts as passed."
    )
    value: float | None
    limit: float | None
    detail: str


class RolloutVersionInfo(BaseModel):
    requests: int = Field(description="Requests this version answered in its rollout role, in this process.")
    errors: int
    in_window: int = Field(description="Of them, in the window the gates look at.")
    error_rate: float | None
    p99_ms: float | None = Field(description="p99 of the time in the version's batcher (queue and model).")
    loaded: bool


class ShadowInfo(BaseModel):
    copies: int = Field(description="Shadow copies the candidate answered or failed.")
    dropped: int = Field(description="Copies dropped because the shadow queue was full.")
    compared_inputs: int
    agreement: float | None = Field(description="Share of inputs where the candidate gave stable's label.")
    mean_top1_difference: float | None


class RolloutInfo(BaseModel):
    model: str
    file: str = Field(description="The policy file this process reads.")
    policy: dict[str, Any] | None = Field(description="The policy in force here (None: the newest version serves).")
    policy_error: str | None = Field(description="Why the file could not be used (the last good policy is kept).")
    state: Literal["no policy", "stable only", "shadow", "canary", "rolled back"]
    serving: int | None = Field(description="The version answering unpinned requests, but for a canary's share.")
    gates: list[GateInfo]
    versions: dict[str, RolloutVersionInfo]
    shadow: ShadowInfo | None
    process: int = Field(description="The process whose figures these are: each serving process keeps its own.")


class Status(BaseModel):
    status: str
