"""Loading a version folder into a `ModelVersion` that has answered a warm-up batch.

Each version's model calls run on the runtime chosen for it as it loads (service.core.runtimes:
float32 TensorFlow, or a faster one that passed the version's verification sample).

The loader owns what every version shares: one pool of model threads for every model call of
every version, sized to the machine (TF Serving does the same: a pool per version would
oversubscribe the cores as versions come and go), and the service's metrics and tracing.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contract.errors import ArtifactError
from contract.savedmodel import SavedModel, load_model
from service.core.batcher import Batcher
from service.core.handlers import Handler, handler_for
from service.core.metrics import Metrics
from service.core.monitoring import VersionMonitor
from service.core.runtimes import Predict, Runtime, bf16_unavailable, candidates_for, choose_runtime
from service.core.tracing import Tracing
from service.core.versions import ModelVersion
from service.settings import Settings

log = logging.getLogger("service.loading")

WARM_UP_TIMEOUT_S = 120.0


class Loader(Protocol):
    """What the registry needs to bring versions in and out (a fake in the registry's unit tests)."""

    async def load(self, version_dir: Path) -> ModelVersion:
        """A loaded version that has answered its warm-up batch; ArtifactError naming the folder if not."""

    def retire(self, version: ModelVersion) -> None:
        """`version` takes no more requests: it stops counting as loaded (it is unloaded next)."""

    async def unload(self, version: ModelVersion) -> None:
        """Answer what is queued for `version`, then let it go."""

    async def close(self) -> None:
        """After every version is unloaded: stop the model threads."""


@dataclass(frozen=True)
class OpenedVersion:
    """A version folder opened: its checked SavedModel, its kind's handler, and its model calls on the
    runtime chosen for it (`runtime` says which and why)."""

    saved_model: SavedModel
    handler: Handler
    predict: Predict
    runtime: Runtime


def open_version(version_dir: Path, settings: Settings) -> OpenedVersion:
    """What every way of running a version shares (the batcher here, offline scoring in service.score):
    the checks, the handler and the runtime; ArtifactError naming the folder."""
    saved_model = load_model(version_dir)
    card = saved_model.card
    try:
        handler = handler_for(card.task)(card, settings)
    except LookupError as exc:
        raise ArtifactError(f"{version_dir}: {exc}") from None
    predict, runtime = choose_runtime(saved_model, settings)
    return OpenedVersion(saved_model, handler, predict, runtime)


class VersionLoader:
    def __init__(self, settings: Settings, metrics: Metrics, tracing: Tracing) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tracing = tracing
        self._model_threads = ThreadPoolExecutor(settings.model_threads, thread_name_prefix="model")
        bf16 = bf16_unavailable(settings)
        log.info("SERVICE_RUNTIME=%s (faster runtimes tried before float32, where a version has a verification "
                 "sample: %s); bf16 in this process: %s", settings.runtime,
                 ", ".join(candidates_for(settings.runtime)) or "none", "yes" if bf16 is None else f"no ({bf16})")

    async def load(self, version_dir: Path) -> ModelVersion:
        # Off the event loop: reading the SavedModel, and running the verification sample on a candidate runtime.
        opened = await asyncio.to_thread(open_version, version_dir, self._settings)
        saved_model, handler, runtime = opened.saved_model, opened.handler, opened.runtime
        card = saved_model.card
        settings = self._settings
        batcher: Batcher[Any] = Batcher(
            opened.predict,
            handler.concat,
            executor=self._model_threads,
            concurrency=settings.model_threads,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_batch_delay_ms / 1000,
            queue_limit=settings.queue_limit,
            timeout_s=settings.request_timeout_s,
            metrics=self._metrics.for_batcher(card.name, card.version),
            tracing=self._tracing.for_batcher(card.name, card.version),
        )
        batcher.start()
        try:
            # A first call builds TensorFlow's kernels and can take seconds on a busy machine: it gets
            # its own generous limit, not the request timeout, which may be set far shorter.
            await batcher.submit(handler.warm_up_rows(settings.max_batch_size), timeout_s=WARM_UP_TIMEOUT_S)
        except Exception as exc:
            await batcher.close()
            raise ArtifactError(f"{version_dir}: the warm-up batch failed ({exc})") from exc
        monitor = None
        if settings.monitoring:  # from here on: the warm-up batch is not traffic
            monitor = VersionMonitor(card.name, card.version, card.labels, card.model_extra, settings.drift_window,
                                     settings.drift_threshold,
                                     self._metrics.for_monitor(card.name, card.version, card.labels))
            batcher.watch(monitor.observe)
        self._metrics.model_loaded.labels(card.name, str(card.version)).set(1)
        self._metrics.model_runtime.labels(card.name, str(card.version), runtime.name).set(1)
        log.info("loaded %s version %d (%s)", card.name, card.version, version_dir)
        return ModelVersion(saved_model, handler, batcher, runtime, monitor)

    def retire(self, version: ModelVersion) -> None:
        # Its gauges go now: a retired version's drift score would go on alerting. Its counters stay.
        monitor = version.monitor
        self._metrics.version_retired(version.name, version.version, version.runtime.name,
                                      monitor.scored_signals if monitor else ())

    async def unload(self, version: ModelVersion) -> None:
        await version.batcher.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._model_threads.shutdown, wait=True)
