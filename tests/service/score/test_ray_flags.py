"""`--ray`'s checks that need no cluster: each refusal comes before the cluster is joined."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.score.conftest import write_texts
from tests.service.score.test_resume import crash_after

RAY_ADDRESS = "127.0.0.2:1"  # nothing listens there: a test that got as far as joining would fail


def test_actors_without_ray_are_refused(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    run = score("tiny-text", source, "--output", tmp_path / "out.parquet", "--actors", 2)
    assert run.status == 2
    assert "--actors needs --ray" in run.stderr


def test_an_existing_output_folder_or_its_partial_one_is_refused(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    (tmp_path / "out.parquet").mkdir()
    run = score("tiny-text", source, "--output", tmp_path / "out.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2 and "out.parquet' already exists" in run.stderr
    (tmp_path / "other.parquet.partial").mkdir()
    run = score("tiny-text", source, "--output", tmp_path / "other.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2
    assert "other.parquet.partial' holds an interrupted run's output: continue it with --resume" in run.stderr
    run = score("tiny-text", source, "--output", tmp_path / "no" / "out.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2 and "does not exist" in run.stderr


def test_resume_with_ray_of_a_local_run_s_folder_is_refused(score: Callable, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": f"good {i}"} for i in range(10)])
    job = ["tiny-text", source, "--output", tmp_path / "out.csv", "--batch-size", 2, "--part-rows", 4]
    with crash_after(monkeypatch, commits=1):
        assert score(*job).status == 130
    run = score(*job, "--ray", RAY_ADDRESS, "--resume")
    assert run.status == 2
    assert ("out.csv.partial' is another job's output: sharded was False, is now True (a local run's parts: "
            "continue it without --ray)") in run.stderr
    assert score(*job, "--resume").status == 0  # as it says
