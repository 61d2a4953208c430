"""An interrupted job continues with --resume: every row exactly once, in order, the same bytes as one run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.score import checkpoint
from tests.service.images import solid
from tests.service.score.conftest import crash_after, read_rows, write_texts

TEXTS = [("good " * (i % 4)) + ("bad " * (i % 3)) + f"text {i}" for i in range(23)]
TEXTS[5] = ""  # an error row is committed like any other
REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("output_format", ["csv", "jsonl", "parquet"])
def test_an_interrupted_run_resumed_writes_what_one_run_writes(score: Callable, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                output_format: str) -> None:
    source = write_texts(tmp_path / "in.csv", [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)])
    job = ["tiny-text", source, "--id-column", "id", "--batch-size", 2, "--part-rows", 4]
    whole = tmp_path / f"whole.{output_format}"
    assert score(*job, "--output", whole).status == 0

    out = tmp_path / f"out.{output_format}"
    with crash_after(monkeypatch, commits=2):
        stopped = score(*job, "--output", out)
    assert stopped.status == 130
    assert "rows 0 to 7 are written" in stopped.stderr and "--resume" in stopped.stderr
    partial = tmp_path / f"out.{output_format}.partial"
    assert not out.exists()
    assert sorted(p.name for p in partial.iterdir()) == [
        "_manifest.json", f"part-000000000000-000000000004.{output_format}",
        f"part-000000000004-000000000008.{output_format}", f"part-000000000008-000000000012.{output_format}.tmp"]

    refused = score(*job, "--output", out)  # not without --resume
    assert refused.status == 2 and "continue it with --resume" in refused.stderr

    resumed = score(*job, "--output", out, "--resume")
    assert resumed.status == 0, resumed.stderr
    assert "scored 15 rows (0 with an error, continuing from row 8)" in resumed.stderr
    assert not partial.exists()
    rows = read_rows(out)
    assert [row["row"] for row in rows] == list(range(len(TEXTS)))
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(len(TEXTS))]
    assert out.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("input_format", ["jsonl", "parquet", "images"])
def test_every_input_format_resumes_at_the_row_where_it_stopped(score: Callable, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                input_format: str) -> None:
    if input_format == "images":
        source = tmp_path / "images"
        for i in range(11):
            (source / f"{i % 3}").mkdir(parents=True, exist_ok=True)
            (source / f"{i % 3}" / f"{i:02d}.png").write_bytes(solid(("red", "green", "blue")[i % 3]) if i != 4
                                                               else b"broken")
        model = "tiny-image"
    elif input_format == "parquet":
        source = tmp_path / "in.parquet"
        pq.write_table(pa.table({"text": TEXTS}), source, row_group_size=5)  # resuming skips whole row groups
        model = "tiny-text"
    else:
        source = write_texts(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
        model = "tiny-text"
    job = [model, source, "--batch-size", 3, "--part-rows", 6]
    assert score(*job, "--output", tmp_path / "whole.csv").status == 0
    with crash_after(monkeypatch, commits=1):
        assert score(*job, "--output", tmp_path / "out.csv").status == 130
    resumed = score(*job, "--output", tmp_path / "out.csv", "--resume")
    assert resumed.status == 0 and "continuing from row 6" in resumed.stderr
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_resume_is_refused_for_another_version_or_a_changed_input(score: Callable, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_texts(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    job = ["tiny-text", source, "--output", tmp_path / "out.csv", "--batch-size", 2, "--part-rows", 4]
    with crash_after(monkeypatch, commits=1):
        assert score(*job, "--version", 1).status == 130

    other_version = score(*job, "--resume")  # the newest is 2: another job
    assert other_version.status == 2
    assert "version was 1, is now 2" in other_version.stderr
    assert "(--version 1 continues with the version it started with)" in other_version.stderr
    other_batch = score(*job, "--version", 1, "--resume", "--batch-size", 4)
    assert other_batch.status == 2 and "batch_size was 2, is now 4" in other_batch.stderr

    with open(source, "a") as handle:
        handle.write('{"text": "one more"}\n')
    changed = score(*job, "--version", 1, "--resume")
    assert changed.status == 2 and "input was {" in changed.stderr
    assert (tmp_path / "out.csv.partial").is_dir()  # a refusal leaves the interrupted run as it was


def test_a_resume_whose_folder_lacks_a_part_is_refused_naming_the_rows(score: Callable, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A local run continues from the end of its last part; a part missing before it (deleted by hand, a
    # partial copy of the folder) would be rows lost from the output, so the job is refused instead.
    source = write_texts(tmp_path / "in.csv", [{"text": t} for t in TEXTS])
    out = tmp_path / "out.csv"
    job = ["tiny-text", source, "--output", out, "--batch-size", 2, "--part-rows", 4]
    with crash_after(monkeypatch, commits=3):
        assert score(*job).status == 130
    partial = tmp_path / "out.csv.partial"
    (partial / "part-000000000004-000000000008.csv").unlink()
    resumed = score(*job, "--resume")
    assert resumed.status == 2, resumed.stderr
    assert "is missing the rows 4 to 7; delete the folder to start again" in resumed.stderr
    assert not out.exists() and partial.is_dir()


def test_resume_with_nothing_to_resume_starts_and_a_finished_output_is_not_resumed(score: Callable,
                                                                                    tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": "good"}])
    out = tmp_path / "out.csv"
    assert score("tiny-text", source, "--output", out, "--resume").status == 0
    again = score("tiny-text", source, "--output", out, "--resume")
    assert again.status == 2 and "is already complete; nothing to resume" in again.stderr


def test_a_run_stopped_while_joining_the_parts_finishes_on_resume(score: Callable, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": t} for t in TEXTS])
    job = ["tiny-text", source, "--output", tmp_path / "out.parquet", "--batch-size", 4, "--part-rows", 8]
    with monkeypatch.context() as patch:
        def stopped(folder: Path) -> None:
            raise KeyboardInterrupt

        patch.setattr(checkpoint.shutil, "rmtree", stopped)  # the output is renamed in, the folder stays
        assert score(*job).status == 130
    manifest = json.loads((tmp_path / "out.parquet.partial" / "_manifest.json").read_text())
    assert manifest["finished"] is True and manifest["rows"] == len(TEXTS)
    assert score(*job, "--resume").status == 0
    assert not (tmp_path / "out.parquet.partial").exists()
    assert [row["row"] for row in read_rows(tmp_path / "out.parquet")] == list(range(len(TEXTS)))


@pytest.mark.slow
def test_a_killed_process_resumed_writes_what_one_run_writes(score: Callable, tmp_path: Path,
                                                             artifacts_dir: Path) -> None:
    texts = [f"{'good ' * (i % 5)}{'bad ' * (i % 7)}review {i}" for i in range(4000)]
    source = write_texts(tmp_path / "in.parquet", [{"id": i, "text": t} for i, t in enumerate(texts)])
    job = ["tiny-text", str(source), "--id-column", "id", "--batch-size", "1", "--part-rows", "50"]
    whole = tmp_path / "whole.csv"
    assert score(*job, "--output", whole).status == 0
    out = tmp_path / "out.csv"
    partial = tmp_path / "out.csv.partial"
    environment = os.environ | {"SERVICE_ARTIFACTS_DIR": str(artifacts_dir)}
    process = subprocess.Popen([sys.executable, "-m", "service.score", *job, "--output", str(out)], cwd=REPO,
                               env=environment, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(partial.glob("part-*.csv"))) < 5:
            assert process.poll() is None and time.monotonic() < deadline, "the job ended before it was killed"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert not out.exists()
    resumed = score(*job, "--output", out, "--resume")
    assert resumed.status == 0, resumed.stderr
    assert "continuing from row" in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert [row["row"] for row in read_rows(out)] == list(range(len(texts)))
