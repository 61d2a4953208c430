"""A loaded model version, and what the service knows of one model's versions.

`ModelVersion` is the one name for "a version the service can answer with": its SavedModel
(contract.savedmodel), its kind's handler, the batcher in front of it, the runtime its model
calls run on (service.core.runtimes) and, with monitoring on, its monitor. `ModelVersions` is
one model: the versions loaded, those that failed to load, and those on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.card import ModelCard
from contract.savedmodel import SavedModel
from service.core.batcher import Batcher
from service.core.handlers import Handler
from service.core.monitoring import VersionMonitor
from service.core.runtimes import Runtime


@dataclass(eq=False)
class ModelVersion:
    saved_model: SavedModel
    handler: Handler
    batcher: Batcher[Any]
    runtime: Runtime
    monitor: VersionMonitor | None = None  # None with SERVICE_MONITORING=false

    def __post_init__(self) -> None:
        card = self.saved_model.card
        self.card: ModelCard = card
        self.name: str = card.name
        self.version: int = card.version

    @property
    def path(self) -> Path:
        return self.saved_model.path

    @property
    def labels(self) -> list[str]:
        return self.card.labels


@dataclass
class ModelVersions:
    """One model: its loaded versions, the versions that failed to load (with why), and what is on disk."""

    name: str
    loaded: dict[int, ModelVersion] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    on_disk: list[int] = field(default_factory=list)

    @property
    def latest(self) -> ModelVersion:
        """The version that answers requests that pin none: the newest loaded."""
        return self.loaded[max(self.loaded)]

    @property
    def task(self) -> str:
        return self.latest.card.task
