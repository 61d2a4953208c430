"""Which version scores: the newest unless --version pins one; the output says which."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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
