"""The registry's reload decisions with a fake loader: no TensorFlow, a folder of plain files per version.

The loader is the registry's only way to bring a version in or out, so a fake one that records
its calls shows every decision: what is loaded, when, what is retired, what a failure leaves.
The same behaviour through the real loader and the app is in test_versions_and_reload.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract.errors import ArtifactError
from service.core.errors import NotFound, NotReady
from service.core.metrics import Metrics
from service.core.registry import ModelRegistry, StartupError
from service.settings import Settings


class FakeLoader:
    """Loads a version folder into a stand-in that knows its name, number and task; `broken` folders fail."""

    def __init__(self) -> None:
        self.loads: list[str] = []
        self.retired: list[str] = []
        self.unloads: list[str] = []
        self.broken: set[str] = set()
        self.closed = False

    async def load(self, version_dir: Path) -> Any:
        label = f"{version_dir.parent.name}/{version_dir.name}"
        self.loads.append(label)
        if label in self.broken:
            raise ArtifactError(f"{version_dir}: broken on purpose")
        task = (version_dir / "task").read_text()
        card = SimpleNamespace(name=version_dir.parent.name, version=int(version_dir.name), task=task)
        return SimpleNamespace(card=card, name=card.name, version=card.version, label=label,
                               batcher=SimpleNamespace(refuse_queued=lambda error: None))

    def retire(self, version: Any) -> None:
        self.retired.append(version.label)

    async def unload(self, version: Any) -> None:
        self.unloads.append(version.label)

    async def close(self) -> None:
        self.closed = True


def publish(root: Path, model: str, version: int, task: str = "text-classification") -> Path:
    folder = root / model / str(version)
    folder.mkdir(parents=True)
    (folder / "task").write_text(task)
    return folder


def registry_for(root: Path, loader: FakeLoader, **settings: Any) -> ModelRegistry:
    values = {"artifacts_dir": root, "reload_interval_s": 0, "default_sentiment_model": "text"} | settings
    return ModelRegistry(Settings(**values), loader, Metrics())


async def test_start_loads_the_newest_versions_of_every_model_and_the_latest_answers(tmp_path: Path) -> None:
    for version in (1, 2, 3):
        publish(tmp_path, "text", version)
    publish(tmp_path, "image", 4, task="image-classification")
    loader = FakeLoader()
    registry = registry_for(tmp_path, loader, model_versions=2)
    await registry.start()
    assert sorted(loader.loads) == ["image/4", "text/2", "text/3"]
    assert registry.ready
    assert registry.get(None, "text-classification").label == "text/3"
    assert registry.get("text", "text-classification", 2).label == "text/2"
    assert registry.get(None, "image-classification").label == "image/4"
    with pytest.raises(NotFound, match="version 1 of 'text' is not loaded"):
        registry.get("text", "text-classification", 1)
    with pytest.raises(NotFound, match="no text-classification model named 'image'"):
        registry.get("image", "text-classification")
    await registry.close()
    assert sorted(loader.unloads) == ["image/4", "text/2", "text/3"] and loader.closed
    assert loader.retired == []  # a shutdown retires nothing: the process is going


async def test_a_broken_newest_version_stops_the_start_and_a_broken_older_one_is_reported(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    publish(tmp_path, "text", 2)
    loader = FakeLoader()
    loader.broken = {"text/1"}
    registry = registry_for(tmp_path, loader)
    await registry.start()
    assert registry.model("text").failed == {1: f"{tmp_path / 'text' / '1'}: broken on purpose"}
    assert sorted(registry.model("text").loaded) == [2]

    loader.broken = {"text/2"}
    with pytest.raises(StartupError, match="broken on purpose"):
        await registry_for(tmp_path, loader).start()
    with pytest.raises(StartupError, match="holds no models"):
        await registry_for(tmp_path / "text" / "1", FakeLoader()).start()


async def test_a_new_version_is_loaded_once_settled_and_then_the_oldest_is_retired(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    publish(tmp_path, "text", 2)
    loader = FakeLoader()
    registry = registry_for(tmp_path, loader, model_versions=2)
    await registry.start()
    publish(tmp_path, "text", 3)
    await registry.refresh()  # the first look at version 3: not settled yet
    assert "text/3" not in loader.loads
    await registry.refresh()  # unchanged since: loaded, and version 1 retired
    assert sorted(registry.model("text").loaded) == [2, 3]
    assert registry.get(None, "text-classification").label == "text/3"
    assert loader.retired == ["text/1"]  # at once; its queue is answered before it is unloaded
    await asyncio.sleep(0)
    assert loader.unloads == ["text/1"]


async def test_a_folder_that_keeps_changing_is_not_loaded(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    loader = FakeLoader()
    registry = registry_for(tmp_path, loader)
    await registry.start()
    copying = publish(tmp_path, "text", 2)
    for size in range(3):
        (copying / "weights").write_bytes(b"x" * (size + 1))  # still being copied in
        await registry.refresh()
    assert loader.loads == ["text/1"]
    await registry.refresh()
    assert loader.loads == ["text/1", "text/2"]


async def test_a_failed_version_is_retried_only_once_it_changes_and_never_replaces_a_working_one(
    tmp_path: Path,
) -> None:
    publish(tmp_path, "text", 1)
    loader = FakeLoader()
    loader.broken = {"text/2"}
    registry = registry_for(tmp_path, loader)
    await registry.start()
    fixed = publish(tmp_path, "text", 2)
    for _ in range(4):
        await registry.refresh()
    assert loader.loads == ["text/1", "text/2"]  # tried once, not again while unchanged
    assert registry.get(None, "text-classification").label == "text/1"
    assert 2 in registry.model("text").failed

    loader.broken = set()
    (fixed / "weights").write_bytes(b"fixed")
    await registry.refresh()  # changed: not settled yet
    await registry.refresh()
    assert loader.loads == ["text/1", "text/2", "text/2"]
    assert registry.get(None, "text-classification").label == "text/2"
    assert 2 not in registry.model("text").failed


async def test_a_version_of_another_task_is_refused_and_unloaded(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    loader = FakeLoader()
    registry = registry_for(tmp_path, loader)
    await registry.start()
    publish(tmp_path, "text", 2, task="image-classification")
    await registry.refresh()
    await registry.refresh()
    assert "differs from the served versions'" in registry.model("text").failed[2]
    assert loader.unloads == ["text/2"]
    assert registry.get(None, "text-classification").label == "text/1"


async def test_a_version_deleted_from_disk_is_retired_unless_it_is_the_last(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    publish(tmp_path, "text", 2)
    loader = FakeLoader()
    registry = registry_for(tmp_path, loader)
    await registry.start()
    for version in (2, 1):
        for path in sorted((tmp_path / "text" / str(version)).iterdir()):
            path.unlink()
        (tmp_path / "text" / str(version)).rmdir()
        await registry.refresh()
        await asyncio.sleep(0)
    assert loader.unloads == ["text/2"]
    assert sorted(registry.model("text").loaded) == [1]  # the last one stays, though gone from disk


async def test_draining_refuses_lookups_and_turns_readiness_off(tmp_path: Path) -> None:
    publish(tmp_path, "text", 1)
    registry = registry_for(tmp_path, FakeLoader())
    assert not registry.ready  # not before the start
    await registry.start()
    assert registry.ready and not registry.draining
    registry.begin_draining()
    registry.begin_draining()  # SIGTERM, then Ctrl-C
    assert registry.draining and not registry.ready
    with pytest.raises(NotReady, match="shutting down"):
        registry.get(None, "text-classification")
    await registry.close()
