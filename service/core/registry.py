"""The model registry: finds the artifacts, loads versions, owns one batcher per loaded version.

At start it loads the newest `SERVICE_MODEL_VERSIONS` versions of every model, strictly: a
broken newest version stops the start with a message naming its folder. Afterwards it
watches the artifacts folder: a new version is loaded and warmed up before it takes new
requests, and only then is the oldest one retired; requests already queued for a retired
version finish on it. A version that fails to load is reported and never replaces a working
one. Each version folder must stop changing for one poll before it is loaded, so a folder
still being copied in is not half-read.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.card import ModelCard
from contract.errors import ArtifactError
from contract.layout import list_versions, model_dirs
from contract.savedmodel import load_model
from service.core.batcher import Batcher
from service.core.errors import NotFound, NotReady, ShuttingDown
from service.core.handlers import Handler, handler_for
from service.core.metrics import Metrics
from service.core.monitoring import VersionMonitor
from service.core.workers import ReadinessBoard
from service.settings import Settings

if TYPE_CHECKING:
    from service.core.spans import Tracing

log = logging.getLogger("service.registry")

WARM_UP_TIMEOUT_S = 120.0


class StartupError(Exception):
    """The service cannot start on this artifacts folder; the message names what is wrong."""


@dataclass
class ServedModel:
    """One loaded model version: its kind's handler, and the batcher in front of it."""

    handler: Handler
    batcher: Batcher[Any]
    monitor: VersionMonitor | None = None  # None with SERVICE_MONITORING=false

    @property
    def card(self) -> ModelCard:
        return self.handler.card

    @property
    def path(self) -> Path:
        return self.handler.model.path

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> int:
        return self.card.version

    @property
    def labels(self) -> list[str]:
        return self.card.labels


@dataclass
class ModelEntry:
    """Everything known of one model: its loaded versions, failed ones, and what is on disk."""

    name: str
    loaded: dict[int, ServedModel] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    on_disk: list[int] = field(default_factory=list)

    @property
    def latest(self) -> ServedModel:
        return self.loaded[max(self.loaded)]

    @property
    def task(self) -> str:
        return self.latest.card.task


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of every file under a version folder."""
    stats = ((p, p.stat()) for p in folder.rglob("*") if p.is_file())
    return tuple(sorted((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns) for p, st in stats))


class ModelRegistry:
    def __init__(self, settings: Settings, metrics: Metrics, tracing: Tracing | None = None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tracing = tracing
        self._models: dict[str, ModelEntry] = {}
        self._seen: dict[Path, Any] = {}  # version folder -> fingerprint at the last poll
        self._failed_at: dict[Path, Any] = {}  # version folder -> fingerprint that failed to load
        self._retiring: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_call: asyncio.TimerHandle | None = None
        self._draining = False
        self._closed = False
        self._loaded_and_warm = False
        self._board = ReadinessBoard(settings.workers)
        # One pool for every model call of every version, sized to the machine (TF Serving does
        # the same): a pool per version would oversubscribe the cores as versions come and go.
        self._model_executor = ThreadPoolExecutor(settings.model_threads, thread_name_prefix="model")

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every model (strictly), warm each up, then watch the folder for new versions."""
        self._loop = asyncio.get_running_loop()
        root = self._settings.artifacts_dir
        if not root.is_dir():
            raise StartupError(f"artifacts folder {root} does not exist (set SERVICE_ARTIFACTS_DIR)")
        model_dirs = self._model_dirs()
        if not model_dirs:
            raise StartupError(f"artifacts folder {root} holds no models")
        for model_dir in model_dirs:
            versions = list_versions(model_dir)
            if not versions:
                raise StartupError(f"{model_dir}: no version folders (expected {model_dir}/<positive integer>/)")
            entry = self._models.setdefault(model_dir.name, ModelEntry(model_dir.name, on_disk=versions))
            newest, *older = reversed(versions[-self._settings.model_versions :])
            try:
                await self._load(entry, model_dir / str(newest))
            except ArtifactError as exc:
                raise StartupError(str(exc)) from exc
            for version in older:  # an older version that fails is reported, not fatal
                await self._try_load(entry, model_dir / str(version))
        self._set_ready(True)
        if self._settings.reload_interval_s > 0:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def begin_draining(self) -> None:
        """On shutdown: readiness turns 503 and new requests are refused; queued ones go on.

        Called from the stop-signal handler. Whatever is still queued shortly before the shutdown
        grace runs out is refused with ShuttingDown: a 503 that a load balancer retries on another
        replica, where the server would otherwise cancel it with a bare 500.
        """
        if not self._draining:
            log.info("draining: readiness is 503, new requests are refused, queued ones are answered")
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._refuse_queued_before_the_grace_ends)
        self._draining = True
        self._set_ready(False)

    def _refuse_queued_before_the_grace_ends(self) -> None:
        if self._closed:  # the server's wait is over: close() answers what is left
            return
        grace = self._settings.shutdown_grace_s
        # Half a second or so for the refusals to be written before the server cancels what is left.
        margin = min(1.0, grace / 2)
        self._last_call = asyncio.get_running_loop().call_later(grace - margin, self._refuse_queued)

    def _refuse_queued(self) -> None:
        error = ShuttingDown("the service stopped before this request's turn came; try again")
        for batcher in self._batchers():
            batcher.refuse_queued(error)

    @property
    def ready(self) -> bool:
        """Every model loaded and warm, not draining; with several worker processes, in all of them."""
        return self._loaded_and_warm and self._board.all_ready()

    def _set_ready(self, ready: bool) -> None:
        self._loaded_and_warm = ready
        self._board.set(ready)

    @property
    def draining(self) -> bool:
        return self._draining

    async def close(self) -> None:
        self.begin_draining()
        self._closed = True
        if self._last_call is not None:
            self._last_call.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.gather(*(b.close() for b in self._batchers()), *self._retiring)
        self._model_executor.shutdown(wait=True)

    def _batchers(self) -> list[Batcher[Any]]:
        """The batcher of every loaded version."""
        return [served.batcher for entry in self._models.values() for served in entry.loaded.values()]

    # -- lookups ------------------------------------------------------------------------------

    def models(self) -> list[ModelEntry]:
        return [entry for entry in self._models.values() if entry.loaded]

    def get(self, name: str | None, task: str, version: int | None = None) -> ServedModel:
        """The model (and version) a request names, or the task's default; 404 when there is none."""
        if self._draining:
            raise NotReady("the service is shutting down")
        if name is None:
            name = self.default_name(task)
        entry = self._models.get(name) if name is not None else None
        if entry is None or not entry.loaded or entry.task != task:
            names = ", ".join(e.name for e in self.models() if e.task == task) or "none"
            what = f"no {task} model named {name!r}" if name else f"no {task} model is loaded"
            raise NotFound(what, accepted=f"one of: {names}")
        if version is None:
            return entry.latest
        served = entry.loaded.get(version)
        if served is None:
            raise NotFound(f"version {version} of {name!r} is not loaded",
                           accepted=f"one of the loaded versions: {', '.join(map(str, sorted(entry.loaded)))}")
        return served

    def entry(self, name: str) -> ModelEntry:
        entry = self._models.get(name)
        if entry is None or not entry.loaded:
            raise NotFound(f"no model named {name!r}", accepted=f"one of: {', '.join(e.name for e in self.models())}")
        return entry

    def default_name(self, task: str) -> str | None:
        candidates = [e.name for e in self.models() if e.task == task]
        if self._settings.default_sentiment_model in candidates:
            return self._settings.default_sentiment_model
        return candidates[0] if candidates else None

    # -- loading and retiring -----------------------------------------------------------------

    async def _load(self, entry: ModelEntry, version_dir: Path) -> ServedModel:
        """Load, warm up through the batcher, and only then make the version routable."""
        model = await asyncio.to_thread(load_model, version_dir)
        try:
            handler = handler_for(model.card.task)(model, self._settings)
        except LookupError as exc:
            raise ArtifactError(f"{version_dir}: {exc}") from None
        if entry.loaded and model.card.task != entry.task:
            raise ArtifactError(f"{version_dir}: task {model.card.task!r} differs from the served versions'")
        settings = self._settings
        batcher: Batcher[Any] = Batcher(
            handler.predict,
            handler.concat,
            executor=self._model_executor,
            concurrency=settings.model_threads,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_batch_delay_ms / 1000,
            queue_limit=settings.queue_limit,
            timeout_s=settings.request_timeout_s,
            metrics=self._metrics.for_batcher(model.card.name, model.card.version),
            tracing=self._tracing.for_batcher(model.card.name, model.card.version) if self._tracing else None,
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
            card = model.card
            monitor = VersionMonitor(card.name, card.version, card.labels, card.model_extra, settings.drift_window,
                                     settings.drift_threshold,
                                     self._metrics.for_monitor(card.name, card.version, card.labels))
            batcher.watch(monitor.observe)
        served = ServedModel(handler, batcher, monitor)
        entry.loaded[served.version] = served
        entry.failed.pop(served.version, None)
        self._metrics.model_loaded.labels(served.name, str(served.version)).set(1)
        log.info("loaded %s version %d (%s)", served.name, served.version, version_dir)
        return served

    async def _try_load(self, entry: ModelEntry, version_dir: Path) -> bool:
        try:
            await self._load(entry, version_dir)
            return True
        except ArtifactError as exc:
            version = int(version_dir.name)
            entry.failed[version] = str(exc)
            self._failed_at[version_dir] = _fingerprint(version_dir)
            self._metrics.load_failures.labels(entry.name).inc()
            log.error("could not load %s version %d: %s", entry.name, version, exc)
            return False

    def _retire(self, entry: ModelEntry, version: int, reason: str) -> None:
        """Stop routing to a version now; let its queued requests finish, then drop it."""
        served = entry.loaded.pop(version)
        self._metrics.version_retired(entry.name, version, served.monitor.scored_signals if served.monitor else ())
        log.info("retiring %s version %d (%s)", entry.name, version, reason)
        task = asyncio.get_running_loop().create_task(served.batcher.close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- watching the folder ------------------------------------------------------------------

    def _model_dirs(self) -> list[Path]:
        return model_dirs(self._settings.artifacts_dir)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reload_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bad poll must never stop the watching
                log.exception("checking the artifacts folder failed")

    async def refresh(self) -> None:
        """One look at the artifacts folder: load what is new and settled, retire what is surplus."""
        if not self._settings.artifacts_dir.is_dir():
            return
        for model_dir in self._model_dirs():
            entry = self._models.setdefault(model_dir.name, ModelEntry(model_dir.name))
            entry.on_disk = list_versions(model_dir)
            wanted = entry.on_disk[-self._settings.model_versions :]
            for version in wanted:
                version_dir = model_dir / str(version)
                if version in entry.loaded or not self._settled(version_dir):
                    continue
                if self._failed_at.get(version_dir) == self._seen[version_dir]:
                    continue  # failed before and unchanged since: do not retry
                if await self._try_load(entry, version_dir):
                    self._failed_at.pop(version_dir, None)
            working = sorted(entry.loaded)
            keep = set(working[-self._settings.model_versions :])
            keep &= set(entry.on_disk) or keep  # versions deleted from disk go, unless none is left
            for version in working:
                if version not in keep and len(entry.loaded) > 1:
                    self._retire(entry, version, "superseded" if version in entry.on_disk else "removed from disk")

    def _settled(self, version_dir: Path) -> bool:
        """True when the folder looks the same as at the previous poll."""
        try:
            now = _fingerprint(version_dir)
        except OSError:
            return False
        before, self._seen[version_dir] = self._seen.get(version_dir), now
        return before == now
