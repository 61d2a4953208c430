"""The model registry: finds the artifacts, loads them, and owns one batcher per loaded version."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.artifacts import IMAGE_TASK, Artifact, ArtifactError, ImageInput, ModelCard, list_versions, load_artifact
from service.batcher import Batcher
from service.errors import NotFound
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.registry")


class StartupError(Exception):
    """The service cannot start on this artifacts folder; the message names what is wrong."""


@dataclass
class ServedModel:
    """One loaded model version and the batcher in front of it."""

    artifact: Artifact
    batcher: Batcher[Any, np.ndarray]

    @property
    def card(self) -> ModelCard:
        return self.artifact.card

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> int:
        return self.card.version

    @property
    def labels(self) -> list[str]:
        return self.card.labels


def _batch_predict(artifact: Artifact) -> Any:
    """The batcher's view of a model: a list of inputs in, one row of probabilities per input out."""
    if artifact.card.task == IMAGE_TASK:
        return lambda images: artifact.predict(np.stack(images))
    return lambda texts: artifact.predict(texts)


def _warm_up_input(card: ModelCard) -> Any:
    if isinstance(card.input, ImageInput):
        return np.zeros((card.input.height, card.input.width, 3), dtype=np.uint8)
    return b"warm up"


class ModelRegistry:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._served: dict[str, ServedModel] = {}
        self._available: dict[str, list[int]] = {}
        self.ready = False

    async def load_all(self) -> None:
        """Load the newest version of every model, then warm each one up through its batcher."""
        root = self._settings.artifacts_dir
        if not root.is_dir():
            raise StartupError(f"artifacts folder {root} does not exist (set SERVICE_ARTIFACTS_DIR)")
        model_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for model_dir in model_dirs:
            versions = list_versions(model_dir)
            if not versions:
                raise StartupError(f"{model_dir}: no version folders (expected {model_dir}/<positive integer>/)")
            self._available[model_dir.name] = versions
            served = await self._load(model_dir / str(versions[-1]))
            self._served[served.name] = served
        if not self._served:
            raise StartupError(f"artifacts folder {root} holds no models")
        for served in self._served.values():
            await served.batcher.submit([_warm_up_input(served.card)] * self._settings.max_batch_size)
            self._metrics.model_loaded.labels(served.name, str(served.version)).set(1)
            log.info("serving %s version %d (%s)", served.name, served.version, served.artifact.path)
        self.ready = True

    async def _load(self, version_dir: Path) -> ServedModel:
        try:
            artifact = await asyncio.to_thread(load_artifact, version_dir)
        except ArtifactError as exc:
            raise StartupError(str(exc)) from exc
        settings = self._settings
        batcher: Batcher[Any, np.ndarray] = Batcher(
            _batch_predict(artifact),
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_batch_delay_ms / 1000,
            queue_limit=settings.queue_limit,
            timeout_s=settings.request_timeout_s,
            workers=settings.model_threads,
            metrics=self._metrics.for_batcher(artifact.card.name, artifact.card.version),
        )
        batcher.start()
        return ServedModel(artifact, batcher)

    async def close(self) -> None:
        self.ready = False
        await asyncio.gather(*(served.batcher.close() for served in self._served.values()))

    def models(self) -> list[ServedModel]:
        return list(self._served.values())

    def available_versions(self, name: str) -> list[int]:
        return self._available.get(name, [])

    def get(self, name: str | None, task: str) -> ServedModel:
        """The model a request names, or the task's default; 404 when there is none."""
        if name is None:
            name = self.default_name(task)
        served = self._served.get(name) if name is not None else None
        if served is None or served.card.task != task:
            names = ", ".join(m.name for m in self._served.values() if m.card.task == task) or "none"
            what = f"no {task} model named {name!r}" if name else f"no {task} model is loaded"
            raise NotFound(what, accepted=f"one of: {names}")
        return served

    def default_name(self, task: str) -> str | None:
        candidates = [m.name for m in self._served.values() if m.card.task == task]
        if task != IMAGE_TASK and self._settings.default_sentiment_model in candidates:
            return self._settings.default_sentiment_model
        return candidates[0] if candidates else None
