"""Which versions of each model are loaded, and which one answers a request.

At start the registry loads the newest `SERVICE_MODEL_VERSIONS` versions of every model,
strictly: a broken newest version stops the start with a message naming its folder. Then it
looks at the artifacts folder every `SERVICE_RELOAD_INTERVAL_S`: a new version that has
settled (service.core.watching) is loaded and warmed up (service.core.loading) before it takes
requests, and only then is the oldest one retired; requests already queued for a retired
version finish on it. A version that fails to load is reported and never replaces a working one.

A model's rollout policy (service.rollout), read on the same tick, decides which loaded version
answers requests that pin none; the versions it names stay loaded beyond the newest ones.

Loading goes through a `Loader`, so the reload decisions can be tested with a fake one.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from contract.errors import ArtifactError
from contract.layout import list_versions, model_dirs
from service.core.draining import Drain
from service.core.errors import NotFound, NotReady
from service.core.loading import Loader
from service.core.metrics import Metrics
from service.core.versions import ModelVersion, ModelVersions
from service.core.watching import FolderWatch
from service.rollout.policy import PolicyStore
from service.rollout.rollouts import Rollouts
from service.settings import Settings

log = logging.getLogger("service.registry")


class StartupError(Exception):
    """The service cannot start on this artifacts folder; the message names what is wrong."""


class ModelRegistry:
    def __init__(self, settings: Settings, loader: Loader, metrics: Metrics) -> None:
        self._settings = settings
        self._loader = loader
        self._metrics = metrics
        self._models: dict[str, ModelVersions] = {}
        self._watch = FolderWatch()
        self._retiring: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self.rollouts = Rollouts(PolicyStore(settings.rollout_dir or settings.artifacts_dir), metrics,
                                 settings.shadow_queue_limit)
        self.drain = Drain(settings.workers, settings.shutdown_grace_s, self._refuse_queued)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every model (strictly), warm each up, then watch the folder for new versions."""
        root = self._settings.artifacts_dir
        if not root.is_dir():
            raise StartupError(f"artifacts folder {root} does not exist (set SERVICE_ARTIFACTS_DIR)")
        folders = model_dirs(root)
        if not folders:
            raise StartupError(f"artifacts folder {root} holds no models")
        self.rollouts.reload(folder.name for folder in folders)
        for model_dir in folders:
            versions = list_versions(model_dir)
            if not versions:
                raise StartupError(f"{model_dir}: no version folders (expected {model_dir}/<positive integer>/)")
            model = self._models.setdefault(model_dir.name, ModelVersions(model_dir.name, on_disk=versions))
            newest, *older = sorted(self._wanted(model.name, versions), reverse=True)
            try:
                await self._load(model, model_dir / str(newest))
            except ArtifactError as exc:
                raise StartupError(str(exc)) from exc
            for version in older:  # an older version that fails is reported, not fatal
                await self._try_load(model, model_dir / str(version))
        self.rollouts.start()
        self.drain.started(asyncio.get_running_loop())
        if self._settings.reload_interval_s > 0:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_forever())

    @property
    def ready(self) -> bool:
        """Every model loaded and warm, not draining; with several worker processes, in all of them."""
        return self.drain.ready

    @property
    def draining(self) -> bool:
        return self.drain.draining

    def begin_draining(self) -> None:
        """On SIGTERM (service.core.draining): readiness turns 503, new requests are refused, queued ones go on."""
        self.drain.begin()

    async def close(self) -> None:
        self.drain.close()
        if self._watcher is not None:
            self._watcher.cancel()
        loaded = [version for model in self._models.values() for version in model.loaded.values()]
        await self.rollouts.close()
        await asyncio.gather(*(self._loader.unload(version) for version in loaded), *self._retiring)
        await self._loader.close()

    def _refuse_queued(self, error: Exception) -> None:
        for model in self._models.values():
            for version in model.loaded.values():
                version.batcher.refuse_queued(error)

    # -- lookups ------------------------------------------------------------------------------

    def models(self) -> list[ModelVersions]:
        """Every model with at least one loaded version."""
        return [model for model in self._models.values() if model.loaded]

    def get(self, name: str | None, task: str, version: int | None = None) -> ModelVersion:
        """The version a request names, or else the one serving; the task's default model when it names none.

        NotFound (404) when there is no such model or version, NotReady (503) while draining.
        """
        model = self.find(name, task)
        if version is None:
            return self.serving(model)
        served = model.loaded.get(version)
        if served is None:
            raise NotFound(f"version {version} of {model.name!r} is not loaded",
                           accepted=f"one of the loaded versions: {', '.join(map(str, sorted(model.loaded)))}")
        return served

    def serving(self, model: ModelVersions) -> ModelVersion:
        """The version requests that pin none get: the newest loaded, or the rollout policy's stable one."""
        return self.rollouts.serving(model)

    def find(self, name: str | None, task: str) -> ModelVersions:
        """The model a request names, else the task's default; NotFound (404), or NotReady (503) while draining."""
        if self.drain.draining:
            raise NotReady("the service is shutting down")
        if name is None:
            name = self.default_name(task)
        model = self._models.get(name) if name is not None else None
        if model is None or not model.loaded or model.task != task:
            names = ", ".join(m.name for m in self.models() if m.task == task) or "none"
            what = f"no {task} model named {name!r}" if name else f"no {task} model is loaded"
            raise NotFound(what, accepted=f"one of: {names}")
        return model

    def model(self, name: str) -> ModelVersions:
        """A model by name, whatever its task; NotFound (404) when none is loaded."""
        model = self._models.get(name)
        if model is None or not model.loaded:
            raise NotFound(f"no model named {name!r}", accepted=f"one of: {', '.join(m.name for m in self.models())}")
        return model

    def default_name(self, task: str) -> str | None:
        candidates = [m.name for m in self.models() if m.task == task]
        if self._settings.default_sentiment_model in candidates:
            return self._settings.default_sentiment_model
        return candidates[0] if candidates else None

    # -- loading and retiring -----------------------------------------------------------------

    async def _load(self, model: ModelVersions, version_dir: Path) -> ModelVersion:
        """Load and warm up a version, and only then make it routable."""
        version = await self._loader.load(version_dir)
        if model.loaded and version.card.task != model.task:
            self._loader.retire(version)
            await self._loader.unload(version)
            raise ArtifactError(f"{version_dir}: task {version.card.task!r} differs from the served versions'")
        model.loaded[version.version] = version
        model.failed.pop(version.version, None)
        return version

    async def _try_load(self, model: ModelVersions, version_dir: Path) -> bool:
        try:
            await self._load(model, version_dir)
        except ArtifactError as exc:
            version = int(version_dir.name)
            model.failed[version] = str(exc)
            self._watch.failed(version_dir)
            self._metrics.load_failures.labels(model.name).inc()
            log.error("could not load %s version %d: %s", model.name, version, exc)
            return False
        self._watch.loaded(version_dir)
        return True

    def _retire(self, model: ModelVersions, version: int, reason: str) -> None:
        """Stop routing to a version now; let its queued requests finish, then unload it."""
        retired = model.loaded.pop(version)
        log.info("retiring %s version %d (%s)", model.name, version, reason)
        self._loader.retire(retired)
        task = asyncio.get_running_loop().create_task(self._loader.unload(retired))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- watching the folder ------------------------------------------------------------------

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reload_interval_s)
            try:
                await self.refresh()
            except Exception:  # a bad look must never stop the watching
                log.exception("checking the artifacts folder failed")

    def _wanted(self, name: str, on_disk: list[int]) -> set[int]:
        """The versions to keep loaded: the newest SERVICE_MODEL_VERSIONS, and those the rollout policy names."""
        return set(on_disk[-self._settings.model_versions :]) | (self.rollouts.pinned_versions(name) & set(on_disk))

    async def refresh(self) -> None:
        """One look at the artifacts folder and the rollout policies: load what is new and settled, retire
        what is surplus, then judge the rollouts' gates."""
        if not self._settings.artifacts_dir.is_dir():
            return
        folders = model_dirs(self._settings.artifacts_dir)
        self.rollouts.reload(folder.name for folder in folders)
        for model_dir in folders:
            model = self._models.setdefault(model_dir.name, ModelVersions(model_dir.name))
            model.on_disk = list_versions(model_dir)
            for version in sorted(self._wanted(model.name, model.on_disk)):
                version_dir = model_dir / str(version)
                if version in model.loaded or not self._watch.settled(version_dir):
                    continue
                if self._watch.failed_unchanged(version_dir):
                    continue  # failed before and unchanged since: do not retry
                await self._try_load(model, version_dir)
            working = sorted(model.loaded)
            keep = set(working[-self._settings.model_versions :]) | self.rollouts.pinned_versions(model.name)
            keep &= set(model.on_disk) or keep  # versions deleted from disk go, unless none is left
            for version in working:
                if version not in keep and len(model.loaded) > 1:
                    self._retire(model, version, "superseded" if version in model.on_disk else "removed from disk")
        self.rollouts.check(self._models)
