"""`--ray`'s checks that need no cluster: each refusal comes before the cluster is joined."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.score.conftest import write_texts

RAY_ADDRESS = "127.0.0.2:1"  # nothing listens there: a test that got as far as joining would fail


@pytest.mark.parametrize(("flags", "message"), [
    (("--actors", 2), "--actors needs --ray"),
    (("--ray", RAY_ADDRESS, "--resume"), "--resume continues a local run"),
])
def test_flags_that_do_not_go_together_are_refused(score: Callable, tmp_path: Path, flags: tuple,
                                                   message: str) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    run = score("tiny-text", source, "--output", tmp_path / "out.parquet", *flags)
    assert run.status == 2
    assert message in run.stderr


def test_an_existing_output_folder_or_its_partial_one_is_refused(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    (tmp_path / "out.parquet").mkdir()
    run = score("tiny-text", source, "--output", tmp_path / "out.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2 and "exists" in run.stderr
    (tmp_path / "other.parquet.partial").mkdir()
    run = score("tiny-text", source, "--output", tmp_path / "other.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2 and "other.parquet.partial' exists" in run.stderr
    run = score("tiny-text", source, "--output", tmp_path / "no" / "out.parquet", "--ray", RAY_ADDRESS)
    assert run.status == 2 and "does not exist" in run.stderr
