"""Which version scores: --version's, else the rollout policy's stable one, else the newest; the output says which."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from service.rollout.policy import Policy, PolicyStore
from tests.service.score.conftest import read_rows, write_texts
from tests.tiny_models import expected_positive

TEXTS = ["good", "good good bad", "bad"]


@pytest.mark.parametrize(("pin", "version", "chosen"), [((), 2, "newest"), (("--version", 1), 1, "pinned"),
                                                        (("--version", 2), 2, "pinned")])
def test_the_version_is_the_newest_unless_pinned_and_the_output_names_it(score: Callable, tmp_path: Path,
                                                                        pin: tuple, version: int,
                                                                        chosen: str) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": text} for text in TEXTS])
    out = tmp_path / "out.parquet"
    run = score("tiny-text", source, "--output", out, *pin)
    assert run.status == 0, run.stderr
    assert f"with tiny-text version {version} ({chosen})" in run.stderr
    rows = read_rows(out)
    assert {(row["model"], row["version"]) for row in rows} == {("tiny-text", version)}
    # the answers are that version's: the tiny model's probabilities scale with its version number
    assert [row["probability_positive"] for row in rows] == pytest.approx(
        [expected_positive(text, version) for text in TEXTS], abs=1e-6)
    metadata = pq.read_schema(out).metadata
    assert (metadata[b"model"], metadata[b"version"], metadata[b"version_chosen"]) == \
        (b"tiny-text", str(version).encode(), chosen.encode())


def _policy(rollout_dir: Path, stable: int, candidate: int | None = None) -> None:
    mode = "canary" if candidate is not None else "off"
    PolicyStore(rollout_dir).write(Policy(model="tiny-text", stable=stable, candidate=candidate, mode=mode,
                                          weight=1.0), None)


@pytest.mark.parametrize(("pin", "version", "chosen"), [((), 1, "stable"), (("--version", 2), 2, "pinned")])
def test_a_rollout_policy_s_stable_version_scores_unless_a_version_is_pinned(
        score: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pin: tuple, version: int,
        chosen: str) -> None:
    # Stable is the older version, and the newest is a canary taking every unpinned request: a
    # bulk job still scores with stable, which the policy vouches for.
    rollout_dir = tmp_path / "rollouts"
    _policy(rollout_dir, stable=1, candidate=2)
    monkeypatch.setenv("SERVICE_ROLLOUT_DIR", str(rollout_dir))
    source = write_texts(tmp_path / "in.csv", [{"text": text} for text in TEXTS])
    out = tmp_path / "out.parquet"
    run = score("tiny-text", source, "--output", out, *pin)
    assert run.status == 0, run.stderr
    assert f"with tiny-text version {version} ({chosen})" in run.stderr
    assert [row["probability_positive"] for row in read_rows(out)] == pytest.approx(
        [expected_positive(text, version) for text in TEXTS], abs=1e-6)
    assert pq.read_schema(out).metadata[b"version_chosen"] == chosen.encode()


def test_a_policy_in_the_artifacts_folder_counts_when_no_rollout_folder_is_set(
        score: Callable, tmp_path: Path, artifacts_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(artifacts_dir / "tiny-text", artifacts / "tiny-text")
    _policy(artifacts, stable=1)
    monkeypatch.setenv("SERVICE_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.delenv("SERVICE_ROLLOUT_DIR", raising=False)
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    run = score("tiny-text", source, "--output", tmp_path / "out.csv")
    assert run.status == 0, run.stderr
    assert "with tiny-text version 1 (stable)" in run.stderr


def test_a_policy_naming_a_missing_version_or_unreadable_is_refused_before_any_work(
        score: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rollout_dir = tmp_path / "rollouts"
    monkeypatch.setenv("SERVICE_ROLLOUT_DIR", str(rollout_dir))
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    _policy(rollout_dir, stable=7)
    run = score("tiny-text", source, "--output", tmp_path / "out.csv")
    assert run.status == 2
    assert "stable version 7 of 'tiny-text' does not exist; its versions: 1, 2" in run.stderr
    (rollout_dir / "tiny-text" / "rollout.json").write_text("{not json")
    run = score("tiny-text", source, "--output", tmp_path / "out.csv")
    assert run.status == 2
    assert "not a valid rollout policy" in run.stderr and "--version" in run.stderr
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.partial").exists()
    # a pinned version needs no policy, readable or not
    assert score("tiny-text", source, "--output", tmp_path / "out.csv", "--version", 2).status == 0
