"""`--ray`'s shards, manifest and resume without a cluster: the driver and the actor's code, with Ray Data
stood in for by `InProcessRay` (one RangeScorer in this process, the ranges in reverse order, as a cluster may
finish them in any order). tests/scale/test_score_on_ray.py runs the same on a real cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.score import on_ray
from service.score.checkpoint import MANIFEST, Checkpoint
from service.score.inputs import Range
from service.score.on_ray import RangeCounts
from tests.service.score.conftest import read_rows, write_texts

RAY_ADDRESS = "127.0.0.2:1"  # never joined: InProcessRay stands in for the cluster
TEXTS = [("good " * (i % 3) + "bad " * (i % 2)).strip() or "good" for i in range(22)]
TEXTS[6] = ""  # an error row


class InProcessRay:
    """What run_on_ray uses of `ray` and Ray Data, in this process. `stop_after` ranges: Ctrl-C."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.data = self
        self.stop_after = stop_after
        self.given: list[int] = []  # the starts of the ranges handed to the actors
        self.options: dict[str, Any] = {}

    def nodes(self) -> list[dict[str, Any]]:
        return [{"Alive": True}, {"Alive": True}, {"Alive": False}]

    def shutdown(self) -> None:
        pass

    def from_items(self, items: list[dict[str, int]], override_num_blocks: int) -> InProcessRay:
        assert override_num_blocks == len(items)  # one block, so one actor call, per range
        self.items = items
        self.given = [item["start"] for item in items]
        return self

    def map_batches(self, actor: type, *, fn_constructor_args: tuple, batch_size: int, **options: Any) -> Any:
        assert batch_size == 1
        self.actor, self.arguments, self.options = actor, fn_constructor_args, options
        return self

    def iter_rows(self) -> Any:
        scorer = self.actor(*self.arguments)
        for done, item in enumerate(reversed(self.items)):
            if done == self.stop_after:
                raise KeyboardInterrupt
            summary = scorer({name: np.array([value]) for name, value in item.items()})
            yield {name: values[0] for name, values in summary.items()}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Callable[..., InProcessRay]:
    """`cluster(stop_after=None)`: the InProcessRay that the next `--ray` runs get."""

    def use(stop_after: int | None = None) -> InProcessRay:
        ray = InProcessRay(stop_after)
        monkeypatch.setattr(on_ray, "_join", lambda address, node_ip: ray)
        return ray

    return use


def mixed_ids(tmp_path: Path) -> Path:
    """JSON Lines whose ids are numbers and strings, mixed within each range."""
    return write_texts(tmp_path / "in.jsonl", [{"id": i if i % 2 else f"r{i}", "text": text}
                                               for i, text in enumerate(TEXTS)])


def shard_names(extension: str, ends: list[int]) -> list[str]:
    """The shards' names, in row order, for ranges ending at `ends`."""
    return [f"part-{first:012d}-{end:012d}.{extension}" for first, end in zip([0, *ends], ends, strict=False)]


@pytest.mark.parametrize("extension", ["csv", "jsonl", "parquet"])
def test_each_range_is_a_shard_read_alone_and_together_they_are_the_local_output(
        score: Callable, cluster: Callable, tmp_path: Path, extension: str) -> None:
    source = mixed_ids(tmp_path)
    job = ["tiny-text", source, "--id-column", "id", "--batch-size", 2, "--part-rows", 6]
    assert score(*job, "--output", tmp_path / f"local.{extension}").status == 0
    ray = cluster()
    run = score(*job, "--output", tmp_path / "out", "--format", extension, "--ray", RAY_ADDRESS)
    assert run.status == 0, run.stderr
    assert ray.given == [0, 6, 12, 18]
    assert (ray.options["max_restarts"], ray.options["max_task_retries"]) == (-1, -1)  # a lost node's ranges again
    assert ("scored 22 rows (1 with an error) with tiny-text version 2 (newest) on Ray (2 actors of 1 CPUs, "
            "4 ranges) in ") in run.stderr
    assert run.stderr.strip().endswith("(4 shards); rows scored per node: " + f"{on_ray._node_ip()} 22")

    out = tmp_path / "out"
    names = shard_names(extension, [6, 12, 18, 22])
    assert sorted(path.name for path in out.iterdir()) == [MANIFEST, *names]  # the names sort by row
    shards = [read_rows(out / name) for name in names]  # each alone: a CSV shard has its header
    assert [[row["row"] for row in shard] for shard in shards] == [list(range(0, 6)), list(range(6, 12)),
                                                                   list(range(12, 18)), list(range(18, 22))]
    local = read_rows(tmp_path / f"local.{extension}")
    assert [row for shard in shards for row in shard] == local
    if extension == "jsonl":  # a JSON id keeps its own type, whatever the other ids of its range
        assert [row["id"] for row in local] == [i if i % 2 else f"r{i}" for i in range(len(TEXTS))]
    if extension == "parquet":  # the folder reads as one dataset: the manifest is passed over
        assert pq.read_table(out).to_pylist() == local
        assert pq.read_schema(out / names[0]).metadata[b"version_chosen"] == b"newest"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["model"] == "tiny-text" and manifest["version"] == 2 and manifest["sharded"] is True
    assert manifest["finished"] is True and manifest["rows"] == len(TEXTS)


def test_an_interrupted_run_resumed_scores_only_the_ranges_left(score: Callable, cluster: Callable,
                                                                tmp_path: Path) -> None:
    source = mixed_ids(tmp_path)
    job = ["tiny-text", source, "--id-column", "id", "--batch-size", 2, "--part-rows", 4, "--output",
           tmp_path / "out.parquet", "--ray", RAY_ADDRESS]
    cluster(stop_after=2)
    stopped = score(*job)
    assert stopped.status == 130
    assert ("interrupted: 2 shards are written in " in stopped.stderr
            and "out.parquet.partial'; the same command with --resume continues" in stopped.stderr)
    partial = tmp_path / "out.parquet.partial"
    written = shard_names("parquet", [4, 8, 12, 16, 20, 22])[-2:]  # the last two: in reverse order
    assert sorted(path.name for path in partial.iterdir()) == [MANIFEST, *written]
    (partial / f"{written[0]}.1234-5678abcd.tmp").write_bytes(b"half a shard")  # an attempt that died

    refused = score(*job)
    assert refused.status == 2 and "continue it with --resume" in refused.stderr
    ray = cluster()
    resumed = score(*job, "--resume")
    assert resumed.status == 0, resumed.stderr
    assert ray.given == [0, 4, 8, 12]  # only the ranges left
    assert ("scored 16 rows (1 with an error, continuing: 2 of 6 ranges were already written) with tiny-text "
            "version 2 (newest) on Ray (2 actors of 1 CPUs, 4 ranges)") in resumed.stderr
    out = tmp_path / "out.parquet"
    assert not partial.exists() and not list(out.glob("*.tmp"))
    assert [row["row"] for row in pq.read_table(out).to_pylist()] == list(range(len(TEXTS)))
    assert score(*job, "--resume").stderr.endswith("is already complete; nothing to resume\n")


def test_a_resume_with_every_shard_written_finishes_without_the_cluster(score: Callable, cluster: Callable,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    source = mixed_ids(tmp_path)
    job = ["tiny-text", source, "--batch-size", 4, "--part-rows", 8, "--output", tmp_path / "out.csv", "--ray",
           RAY_ADDRESS]
    cluster()

    def stopped(self: Checkpoint) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # stopped after the last shard, before the folder was renamed
        patch.setattr(Checkpoint, "finish_shards", stopped)
        with pytest.raises(KeyboardInterrupt):
            score(*job)

    def no_cluster(address: str, node_ip: str | None) -> None:
        raise AssertionError("joined the cluster with nothing to score")

    monkeypatch.setattr(on_ray, "_join", no_cluster)
    resumed = score(*job, "--resume")
    assert resumed.status == 0, resumed.stderr
    assert ("scored 0 rows (0 with an error, continuing: 3 of 3 ranges were already written) with tiny-text "
            "version 2 (newest) on Ray (0 actors") in resumed.stderr
    assert [row["row"] for name in sorted((tmp_path / "out.csv").glob("part-*"))
            for row in read_rows(name)] == list(range(len(TEXTS)))
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    run = score("tiny-text", empty, "--output", tmp_path / "empty-out.csv", "--ray", RAY_ADDRESS)
    assert run.status == 0 and [p.name for p in (tmp_path / "empty-out.csv").iterdir()] == [MANIFEST]


def test_resume_without_ray_of_a_ray_run_s_folder_is_refused(score: Callable, cluster: Callable,
                                                             tmp_path: Path) -> None:
    source = mixed_ids(tmp_path)
    job = ["tiny-text", source, "--batch-size", 4, "--part-rows", 8, "--output", tmp_path / "out.jsonl"]
    cluster(stop_after=1)
    assert score(*job, "--ray", RAY_ADDRESS).status == 130
    refused = score(*job, "--resume")
    assert refused.status == 2
    assert ("out.jsonl.partial' is another job's output: sharded was True, is now False (a --ray run's shards: "
            "continue it with --ray)") in refused.stderr


def test_the_ranges_left_are_those_with_no_part_whatever_the_order_they_were_written_in(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "out.csv", ".csv", sharded=True)
    ranges = [Range(0, 4, 0), Range(4, 4, 40), Range(8, 4, 80), Range(12, 1, 120)]
    assert checkpoint.remaining(ranges) == ranges  # no folder yet
    manifest = {"model": "m", "sharded": True}
    checkpoint.begin(manifest)
    for first, end in [(12, 13), (4, 8)]:
        checkpoint.commit(first, end, lambda path: path.write_text("x\n"))
    (checkpoint.folder / "part-000000000000-000000000004.csv.99-0badcafe.tmp").write_text("half")
    resumed = Checkpoint(tmp_path / "out.csv", ".csv", sharded=True)
    resumed.check_resume(manifest)  # a gap is no refusal for shards, and the temporary file goes
    assert resumed.remaining(ranges) == [Range(0, 4, 0), Range(8, 4, 80)]
    assert sorted(path.name for path in resumed.folder.iterdir()) == [
        MANIFEST, "part-000000000004-000000000008.csv", "part-000000000012-000000000013.csv"]


def test_a_shard_s_temporary_name_is_its_attempt_s_own(tmp_path: Path) -> None:
    names: list[str] = []
    for sharded in (True, True, False):
        checkpoint = Checkpoint(tmp_path / "out.csv", ".csv", sharded=sharded)
        checkpoint.folder.mkdir(exist_ok=True)
        checkpoint.commit(0, 4, lambda path: names.append(path.name) or path.write_text("x\n"))
    assert names[0] != names[1] and names[0].endswith(".tmp") and names[1].endswith(".tmp")
    assert names[2] == "part-000000000000-000000000004.csv.tmp"


def test_a_range_summarised_twice_counts_once() -> None:
    counts = RangeCounts()
    counts.add(0, 4, 1, "10.0.0.2")
    counts.add(4, 4, 0, "10.0.0.3")
    counts.add(4, 4, 0, "10.0.0.2")  # scored again after 10.0.0.3 was lost
    counts.add(8, 2, 2, "10.0.0.2")
    assert (counts.rows, counts.errors) == (10, 3)
    assert counts.per_node() == "10.0.0.2 10"
    assert RangeCounts().per_node() == "none"
