"""`python -m service.score ... --ray ADDRESS`: the same job on an existing Ray cluster, through Ray Data.

The driver (this process) checks the job as a local run does, then cuts the input into ranges of
`--part-rows` rows (`Source.ranges`: for a CSV or JSON Lines file, the byte offset where each
range starts): exactly the local run's parts. Only those small range descriptions go through
Ray; the rows themselves are read, scored and written where they are scored:

- a pool of `--actors` actors (`RangeScorer`, `--cpus-per-actor` CPUs each, spread over the
  nodes: one model copy per actor) each opens the input (a path every node reaches, or a URI, with
  the driver's `AWS_*` variables) and the model version from storage every node reaches, and
  scores one range per call: read with the local run's own readers (the same
  rows, row numbers and bad rows), scored with `BatchScorer` a batch at a time, and written by the
  local run's own writer as the range's shard, `OUT.partial/part-<first row>-<end row>.<ext>`,
  committed by service.score.checkpoint as a local part is (a temporary name, flushed, renamed);
- each call returns a summary (range start, rows, errors, node), which the driver reads as a
  stream for its progress lines and its last line.

`OUT.partial/` holds the local run's manifest; when every range's shard is there, the manifest is
marked finished and the folder renamed to `OUT`. A stopped run continues with `--resume`: the
manifest is checked as locally, and Ray is handed only the ranges whose shard is not there.

When a node is lost, Ray restarts its actors elsewhere (`max_restarts`) and runs the ranges they
had not returned again (`max_task_retries`); a range is read and scored again whole and its shard
written again under the same name with the same rows, so every row is in the output exactly once.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.score.checkpoint import Checkpoint
from service.score.errors import Refused
from service.score.inputs import Range, open_source
from service.score.outputs import OutputFormat
from service.settings import Settings

if TYPE_CHECKING:
    from service.score.__main__ import Job

PROGRESS_INTERVAL_S = 2.0


class RangeScorer:
    """One model copy on one node: reads ranges of the input, scores them and writes their shards (Ray Data's
    actor). Each call returns a summary of each range: its start, rows, errors and this node's address."""

    def __init__(self, job: dict[str, Any], output: OutputFormat, settings: Settings) -> None:
        from service.score.scorer import BatchScorer

        self.job = job
        self.output = output
        self.checkpoint = Checkpoint(Path(job["output"]), output.extension, sharded=True)
        self.source = open_source(job["input"], job["input_format"], job["text_column"], job["id_column"],
                                  job["encoding"])
        self.scorer = BatchScorer(Path(job["version_dir"]), settings, warm_up_rows=job["batch_size"],
                                  text_column=job["text_column"] or "text")
        self.node = _node_ip()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from service.score.job import _Part, _prepare

        summary: dict[str, list[Any]] = {"start": [], "count": [], "errors": [], "node": []}
        for start, count, offset in zip(batch["start"], batch["count"], batch["offset"], strict=True):
            part = Range(int(start), int(count), int(offset))
            rows = _Part(self.output.columns, self.output.id_name, part.start)  # as the local job collects them
            errors = 0
            for chunk in self.source.read_range(part, self.job["batch_size"]):
                prepared = _prepare(self.scorer, chunk)  # image files read here, as the local job's decode pool does
                scored = self.scorer.results(prepared, self.scorer.predict(prepared, chunk.first_row))
                errors += sum(message is not None for message in scored["error"])
                rows.add(chunk, scored, self.scorer)
            if rows.rows != part.count:  # a shard is named by its range: never one with other rows
                raise RuntimeError(f"rows {part.start} to {part.start + part.count - 1}: read {rows.rows} rows, not "
                                   f"{part.count} (did the input change while the job ran?)")
            self.checkpoint.commit(part.start, part.start + part.count,
                                   partial(self.output.write_shard, columns=rows.columns))
            summary["start"].append(part.start)
            summary["count"].append(part.count)
            summary["errors"].append(errors)
            summary["node"].append(self.node)
        return summary


class RangeCounts:
    """What the ranges written in this run hold, from their summaries, keyed by range start: a range whose
    summary comes twice (scored again after a lost node) counts once, with its last summary."""

    def __init__(self) -> None:
        self.ranges: dict[int, tuple[int, int, str]] = {}  # start -> (rows, errors, node)

    def add(self, start: int, rows: int, errors: int, node: str) -> None:
        self.ranges[start] = (rows, errors, node)

    @property
    def rows(self) -> int:
        return sum(rows for rows, _, _ in self.ranges.values())

    @property
    def errors(self) -> int:
        return sum(errors for _, errors, _ in self.ranges.values())

    def per_node(self) -> str:
        """`<ip> <rows>, ...`, by address: the rows each node has scored."""
        by_node: dict[str, int] = {}
        for rows, _, node in self.ranges.values():
            by_node[node] = by_node.get(node, 0) + rows
        return ", ".join(f"{node} {count:,}" for node, count in sorted(by_node.items())) or "none"


def run_on_ray(job: Job, settings: Settings, address: str, *, actors: int | None, cpus_per_actor: float,
               node_ip: str | None) -> int:
    """Score `job`'s ranges not yet written on the cluster at `address`, and rename its folder to the output
    once they all are; the exit status."""
    started = time.monotonic()
    checkpoint = job.checkpoint
    ranges = job.source.ranges(job.part_rows)
    todo = checkpoint.remaining(ranges)  # on --resume, the ranges whose shard is not there yet
    counts = RangeCounts()
    pool = 0
    try:
        if todo:  # a run with nothing left to score (all written, or an empty input) needs no cluster
            ray = _join(address, node_ip)
            try:
                checkpoint.begin(job.manifest)
                pool = min(actors or sum(1 for node in ray.nodes() if node["Alive"]), len(todo))
                dataset = _dataset(ray, job, settings, todo, pool, cpus_per_actor)
                failure = _collect(dataset, counts, sum(part.count for part in ranges))
            finally:
                ray.shutdown()  # the job's actors end with it (one may still commit the shard it was writing)
        else:
            checkpoint.begin(job.manifest)
            failure = None
    except KeyboardInterrupt:
        print(f"interrupted: {_written(checkpoint)} shards are written in {str(checkpoint.folder)!r}; the same "
              "command with --resume continues", file=sys.stderr)
        return 130
    if failure is None and (missing := checkpoint.remaining(ranges)):
        # Never expected (Ray returned a summary for every range it was given), but never renamed as whole.
        failure = f"{len(missing)} ranges are not written, the first from row {missing[0].start}"
    if failure is not None:
        print(f"the job failed on Ray ({failure}); {_written(checkpoint)} shards are written in "
              f"{str(checkpoint.folder)!r}, and the same command with --resume continues", file=sys.stderr)
        return 1
    shards = len(checkpoint.parts())
    checkpoint.finish_shards()
    seconds = time.monotonic() - started
    output = checkpoint.output
    written = len(ranges) - len(todo)
    resumed = f", continuing: {written} of {len(ranges)} ranges were already written" if written else ""
    card = job.card
    print(f"scored {counts.rows:,} rows ({counts.errors:,} with an error{resumed}) with {card.name} version "
          f"{card.version} ({job.chosen}) on Ray ({pool} actors of {cpus_per_actor:g} CPUs, {len(todo)} ranges) in "
          f"{seconds:.1f} s, {counts.rows / seconds if seconds else 0:,.0f} rows/s -> {output}/ ({shards} shards); "
          f"rows scored per node: {counts.per_node()}", file=sys.stderr)
    return 0


def _join(address: str, node_ip: str | None) -> Any:
    """The `ray` module, connected to the cluster at `address` (Refused if it cannot be)."""
    try:
        import ray
    except ImportError:
        raise Refused("--ray needs Ray Data, which is not installed here (the ray extra: make deps, or "
                      "uv sync --locked --extra ray)") from None
    try:
        ray.init(address=address, _node_ip_address=node_ip, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, or a timeout, with Ray's own words
        raise Refused(f"cannot join the Ray cluster at {address!r} (--ray): {exc}") from None
    return ray


def _collect(dataset: Any, counts: RangeCounts, input_rows: int) -> str | None:
    """Run the job, reading the ranges' summaries as they come, with a progress line on stderr at most every
    PROGRESS_INTERVAL_S; None when every range is written, else what went wrong."""
    last_line = time.monotonic()
    try:
        for summary in dataset.iter_rows():
            counts.add(int(summary["start"]), int(summary["count"]), int(summary["errors"]), str(summary["node"]))
            if time.monotonic() - last_line >= PROGRESS_INTERVAL_S:
                print(f"rows scored per node: {counts.per_node()} (the input has {input_rows:,})", file=sys.stderr,
                      flush=True)
                last_line = time.monotonic()
    except Exception as exc:  # a range that fails for good, or the cluster lost: in Ray's own words
        return f"{type(exc).__name__}: {exc}"
    return None


def _written(checkpoint: Checkpoint) -> int:
    return len(checkpoint.parts()) if checkpoint.folder.is_dir() else 0


def _dataset(ray: Any, job: Job, settings: Settings, ranges: list[Range], actors: int,
             cpus_per_actor: float) -> Any:
    """The ranges, scored and written: one block per range, so that a lost node costs only the ranges it held."""
    source = job.source
    description = {
        "input": source.location.address,  # an absolute path, or a URI
        "input_format": source.format,
        "text_column": job.text_column if source.kind == "text" else None,
        "id_column": job.manifest["id_column"],
        "encoding": job.manifest["encoding"] or "utf-8",
        "version_dir": str(job.version_dir.resolve()),
        "batch_size": job.batch_size,
        "output": str(job.checkpoint.output.resolve()),  # the actors' working folder is not this one
    }
    items = [asdict(part) for part in ranges]
    threads = max(1, int(cpus_per_actor))
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        RangeScorer,
        fn_constructor_args=(description, job.output, settings),
        batch_size=1,
        concurrency=actors,
        num_cpus=cpus_per_actor,
        # The actors' options (Ray Data passes them on to ray.remote):
        # one model copy per node where the pool allows: spread the actors over the nodes;
        scheduling_strategy="SPREAD",
        # Ray Data's defaults, said here because exactly-once output rests on them: an actor on a lost
        # node is restarted elsewhere, and the range it was scoring is given to an actor again;
        max_restarts=-1,
        max_task_retries=-1,
        # TensorFlow's threads for the CPUs the actor holds, as python -m service sizes them; for an input
        # in object storage, this process's AWS_* variables (credentials, region, endpoint), which an actor
        # does not get otherwise: its environment is its node's.
        runtime_env={"env_vars": source.location.environment() | {
            "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}},
    )


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())
