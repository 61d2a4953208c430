"""The service's one settings class: environment variables prefixed `SERVICE_`, checked at start.

`python -m service.settings > docs/reference/settings.md` writes the settings reference from
this class (names, defaults, limits, descriptions); a test fails when the committed page differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import occlusion

# Every log line of the service, however it runs (python -m service, a Ray replica).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class Settings(BaseSettings):
    """Every knob of the service; docs/reference/settings.md is generated from this class."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    artifacts_dir: Path = Field(Path("artifacts"), description="Folder of `<model>/<version>/` SavedModels.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in the image).")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    workers: int = Field(
        1, ge=1, le=64,
        description="Worker processes sharing the port, each with its own copy of the models.",
    )

    # Dynamic batching, per loaded model version.
    max_batch_size: int = Field(32, ge=1, le=1024, description="Most inputs in one model call; 1 turns batching off.")
    max_batch_delay_ms: float = Field(
        5.0, ge=0, le=1000,
        description="Longest a batch waits to fill, from its oldest input's arrival or the model coming free.",
    )
    queue_limit: int = Field(256, ge=1, description="Inputs waiting per model version; beyond it, 503.")
    request_timeout_s: float = Field(10.0, gt=0, le=600, description="Past this a request gets 504.")
    model_threads: int = Field(
        1, ge=1, le=16,
        description="Threads running model calls, shared by every loaded version (also the most batches "
        "one version has in flight).",
    )
    decode_threads: int = Field(
        2, ge=1, le=64, description="Threads decoding large images and v2 request bodies off the event loop."
    )

    # The runtime each model version runs on (service.core.runtimes; docs/runtimes.md).
    runtime: Literal["auto", "tensorflow", "tensorflow-bf16", "openvino-bf16"] = Field(
        "auto",
        description="`auto`: per version, the first runtime in the order openvino-bf16, tensorflow-bf16, tensorflow "
        "that this CPU supports and that passes the version's verification sample; `tensorflow`: float32 only, as "
        "trained; `openvino-bf16`: OpenVINO in bf16 (image models, with the openvino extra) where it verifies; "
        "`tensorflow-bf16`: oneDNN bf16 mixed precision where it verifies. A version without a sample runs in float32.",
    )
    cpu_bf16: Literal["detect", "off"] = Field(
        "detect",
        description="`detect`: the CPU has bf16 if /proc/cpuinfo lists avx512_bf16 or amx_bf16; `off`: treat it as "
        "without (a host whose flags overstate it, or a test of a machine without bf16).",
    )

    # Input limits.
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest request body.")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest width*height an image may declare; checked before decoding."
    )
    max_files: int = Field(16, ge=1, le=1024, description="Most images in one multipart request.")
    max_texts: int = Field(64, ge=1, le=4096, description="Most texts in one /sentiment request.")
    max_text_chars: int = Field(20_000, ge=1, description="Longest text, in characters.")

    # Explanations (service.core.explaining; docs/explanations.md): each asks the model about many variants.
    explain_max_items: int = Field(
        2, ge=1, le=64, description="Most texts or images one request may ask to explain."
    )
    explain_max_words: int = Field(
        occlusion.MAX_WORDS, ge=1, le=512,
        description="Most words a text's explanation leaves out one at a time; a text with more is explained in "
        "that many spans of consecutive words.",
    )
    explain_grid: int = Field(
        occlusion.GRID, ge=2, le=32, description="Cells per side of an image's saliency grid (each cell one variant)."
    )

    # Versions and updates.
    model_versions: int = Field(
        2, ge=1, le=16, description="Newest versions of each model kept loaded (older loaded ones can be pinned)."
    )
    reload_interval_s: float = Field(
        2.0, ge=0, le=3600, description="How often the artifacts folder is checked for new versions; 0: never."
    )

    # Rollouts (service.rollout): a policy per model decides which version answers unpinned requests.
    rollout_dir: Path | None = Field(
        None, description="Folder of `<model>/rollout.json` policies, writable by `python -m service.rollout` and "
        "readable by every serving process; unset: the artifacts folder. Read every reload interval.",
    )
    shadow_queue_limit: int = Field(
        256, ge=1, le=100_000,
        description="Shadow copies waiting for their candidate, per process; beyond it they are dropped and counted.",
    )

    # Access and shutdown.
    api_keys: SecretStr = Field(
        SecretStr(""), description="Comma-separated API keys; empty: no key needed (local use)."
    )
    shutdown_grace_s: int = Field(
        30, ge=1, le=3600, description="On SIGTERM, longest wait (seconds) for queued and in-flight requests."
    )

    default_sentiment_model: str = Field(
        "sentiment-imdb", description="The /sentiment model used when a request names none."
    )

    # Prediction monitoring and drift (service.core.monitoring).
    monitoring: bool = Field(
        True, description="Prediction metrics, input summaries and drift scores per model version."
    )
    drift_window: int = Field(
        1000, ge=10, le=1_000_000,
        description="Recent predictions (and inputs) per model version that the drift scores are computed over.",
    )
    drift_threshold: float = Field(
        0.25, gt=0, le=100,
        description="Drift score (PSI) above which GET /models lists a signal as drifting; the alert's threshold.",
    )

    # The page at / (service/api/page/): a browser client for trying the models.
    page_enabled: bool = Field(
        True, description="Serve the page at /; false for API-only deployments (/ and /page/* are then 404)."
    )

    # The payload log (service.payloads): sampled requests and answers, kept for the next training.
    payload_log_dir: Path | None = Field(
        None,
        description="Folder of the payload log (JSON Lines, one file per process); empty: no payload log.",
    )
    payload_log_sample: float = Field(
        1.0, ge=0, le=1, description="Share of answered /sentiment and /classify-image requests logged."
    )
    payload_log_texts: Literal["text", "hash"] = Field(
        "text", description="What a record keeps of each text: the text itself, or only its sha256 (`hash`)."
    )
    payload_log_images: bool = Field(
        False, description="Keep each image's bytes (base64) in its record; otherwise only its sha256 and file name."
    )
    payload_log_max_bytes: int = Field(
        64 * 1024 * 1024, ge=4096, description="Size of a payload log file before it is rotated."
    )
    payload_log_files: int = Field(
        8, ge=1, le=1000,
        description="Payload log files kept per process, the one being written included (the oldest goes): "
        "with SERVICE_PAYLOAD_LOG_MAX_BYTES, the cap on disk per process.",
    )
    payload_log_queue_bytes: int = Field(
        64 * 1024 * 1024, ge=1024,
        description="Input bytes waiting to be written; a request that would pass it is not logged (and counted).",
    )

    @field_validator("payload_log_dir", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        # Path("") would be the working folder: an empty variable means off, as unset does.
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.get_secret_value().split(",") if key.strip()]

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if any(len(key) < 16 for key in self.api_key_list):
            raise ValueError("each key in SERVICE_API_KEYS must be at least 16 characters (use a random token)")
        if self.queue_limit < self.max_batch_size:
            raise ValueError(
                f"SERVICE_QUEUE_LIMIT ({self.queue_limit}) must be at least SERVICE_MAX_BATCH_SIZE "
                f"({self.max_batch_size}), or no batch could ever fill"
            )
        if self.max_batch_delay_ms / 1000 >= self.request_timeout_s:
            raise ValueError(
                f"SERVICE_MAX_BATCH_DELAY_MS ({self.max_batch_delay_ms}) must be shorter than "
                f"SERVICE_REQUEST_TIMEOUT_S ({self.request_timeout_s} s), or every request would time out"
            )
        if self.max_files > self.queue_limit:
            raise ValueError(
                f"SERVICE_MAX_FILES ({self.max_files}) must not exceed SERVICE_QUEUE_LIMIT "
                f"({self.queue_limit}), or a full request could never be queued"
            )
        if self.max_texts > self.queue_limit:
            raise ValueError(
                f"SERVICE_MAX_TEXTS ({self.max_texts}) must not exceed SERVICE_QUEUE_LIMIT "
                f"({self.queue_limit}), or a full request could never be queued"
            )
        if self.payload_log_dir is not None and self.payload_log_queue_bytes < self.max_body_bytes:
            raise ValueError(
                f"SERVICE_PAYLOAD_LOG_QUEUE_BYTES ({self.payload_log_queue_bytes}) must be at least "
                f"SERVICE_MAX_BODY_BYTES ({self.max_body_bytes}), or the largest requests could never be logged"
            )
        return self


def reference() -> str:
    """The settings reference page, in Markdown, from the fields of `Settings`."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated by `python -m service.settings > docs/reference/settings.md`; do not edit by hand. -->",
        "",
        "Every setting is an environment variable, checked when the service starts: a wrong value stops it",
        "with a message naming the variable and how to fix it. Settings that depend on each other are",
        "checked together (for example, `SERVICE_QUEUE_LIMIT` must be at least `SERVICE_MAX_BATCH_SIZE`).",
        "",
        "| variable | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        empty = default is None or isinstance(default, SecretStr) and not default.get_secret_value()
        shown = "(empty)" if empty else f"`{default}`"
        if isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        lines.append(f"| `SERVICE_{name.upper()}` | {shown} | {_allowed(field.annotation, field.metadata)} "
                     f"| {field.description} |")
    return "\n".join(lines) + "\n"


def _allowed(annotation: Any, metadata: list[Any]) -> str:
    if getattr(annotation, "__origin__", None) is Literal:
        return ", ".join(f"`{value}`" for value in annotation.__args__)
    bounds = []
    for limit in metadata:
        if isinstance(limit, Ge):
            bounds.append(f">= {limit.ge}")
        elif isinstance(limit, Gt):
            bounds.append(f"> {limit.gt}")
        elif isinstance(limit, Le):
            bounds.append(f"<= {limit.le}")
    if bounds:
        return ", ".join(bounds)
    return {bool: "`true`, `false`", Path: "a folder", Path | None: "a folder, or empty",
            SecretStr: "comma-separated keys, 16+ characters each"}.get(annotation, "text")


if __name__ == "__main__":
    print(reference(), end="")
