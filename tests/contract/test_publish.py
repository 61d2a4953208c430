"""Publishing a version: nothing half-written is ever visible under a version number."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from contract.errors import ArtifactError
from contract.layout import list_versions, next_version
from contract.publish import staged_version
from contract.savedmodel import load_model
from tests.tiny_models import build_text_model


def _build_into(folder: Path, name: str, version: int) -> None:
    """The tiny text model, written into an existing (staging) folder, its card naming `name`/`version`."""
    with tempfile.TemporaryDirectory() as scratch:
        built = build_text_model(Path(scratch) / name / str(version))
        for item in built.iterdir():
            shutil.move(item, folder / item.name)


def test_a_version_appears_only_once_finished_and_checked(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-text"
    seen_while_building: list[list[int]] = []
    with staged_version(model_dir) as staged:
        assert staged.version == 1 and staged.path.name.startswith(".staging-1-")
        _build_into(staged.path, "tiny-text", 1)
        seen_while_building.append(list_versions(model_dir))  # what a watching service would find now
        assert staged.load().card.version == 1  # evaluable before it is published
    assert seen_while_building == [[]]
    assert list_versions(model_dir) == [1] and next_version(model_dir) == 2
    assert load_model(model_dir / "1").card.name == "tiny-text"
    assert [p.name for p in model_dir.iterdir()] == ["1"]  # no staging folder left behind


def test_a_failed_build_publishes_nothing_and_leaves_nothing(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-text"
    with pytest.raises(RuntimeError, match="evaluation failed"), staged_version(model_dir):
        raise RuntimeError("evaluation failed")
    assert list(model_dir.iterdir()) == []


def test_a_version_that_breaks_the_contract_is_not_published(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-text"
    with pytest.raises(ArtifactError, match="no model card"), staged_version(model_dir) as staged:
        (staged.path / "saved_model.pb").write_bytes(b"")  # a folder that is not a version
    assert list(model_dir.iterdir()) == []


def test_published_versions_are_never_rewritten(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-text"
    build_text_model(model_dir / "1")
    with pytest.raises(ArtifactError, match="never rewritten"), staged_version(model_dir, version=1):
        pass
    assert next_version(model_dir) == 2


def test_the_first_job_is_refused_when_its_number_was_taken_meanwhile(tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny-text"
    with pytest.raises(ArtifactError, match="appeared while"), staged_version(model_dir) as staged:
        _build_into(staged.path, "tiny-text", 1)
        build_text_model(model_dir / "1")  # another job publishes 1 first
    assert [p.name for p in model_dir.iterdir()] == ["1"]
