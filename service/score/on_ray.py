"""`python -m service.score ... --ray ADDRESS`: the same job on an existing Ray cluster, through Ray Data.

The driver (this process) checks the job as a local run does, then cuts the input into ranges of
`--part-rows` rows (`Source.ranges`: for a CSV or JSON Lines file, the byte offset where each
range starts). Only those small range descriptions go through Ray; the rows themselves are read
where they are scored:

- a pool of `--actors` actors (`RangeScorer`, `--cpus-per-actor` CPUs each, spread over the
  nodes: one model copy per actor) each opens the input and the model version from storage every
  node reaches, and scores one range per call: read with the local run's own readers (the same
  rows, row numbers and bad rows), scored with `BatchScorer` a batch at a time, returned as one
  Arrow table in the local output's columns;
- Ray Data writes each range's table as a shard of the output folder (`--format`), built under
  `OUT.partial/` and renamed to `OUT` when every shard is written.

When a node is lost, Ray restarts its actors elsewhere (`max_restarts`) and runs the ranges they
had not returned again (`max_task_retries`); a range is read and scored again whole, and its shard
is written once. A `Tally` actor on the driver's node counts the rows each node has scored, for
the progress lines and the last line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.score.errors import Refused
from service.score.inputs import Range, open_source
from service.score.outputs import _clean, _text
from service.settings import Settings

if TYPE_CHECKING:
    from service.score.__main__ import Job

PROGRESS_INTERVAL_S = 2.0


def check_output_folder(output: Path) -> None:
    """Refused unless the output folder and its `.partial` sibling are new, in a folder that exists."""
    if output.exists():
        raise Refused(f"output {str(output)!r} exists; choose another --output, or delete it")
    partial = partial_folder(output)
    if partial.exists():
        raise Refused(f"{str(partial)!r} exists (a stopped --ray run: --resume is local only); delete it")
    if not output.parent.is_dir():
        raise Refused(f"the output's folder {str(output.parent)!r} does not exist")


def partial_folder(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


class RangeScorer:
    """One model copy on one node: reads ranges of the input and scores them (Ray Data's actor)."""

    def __init__(self, job: dict[str, Any], settings: Settings, tally: Any) -> None:
        from service.score.scorer import BatchScorer

        self.job = job
        self.source = open_source(Path(job["input"]), job["input_format"], job["text_column"], job["id_column"],
                                  job["encoding"])
        self.scorer = BatchScorer(Path(job["version_dir"]), settings, warm_up_rows=job["batch_size"],
                                  text_column=job["text_column"] or "text")
        self.tally = tally
        self.node = _node_ip()

    def __call__(self, batch: dict[str, Any]) -> Any:
        import pyarrow as pa

        from service.score.job import _Part, _prepare

        tables = []
        for start, count, offset in zip(batch["start"], batch["count"], batch["offset"], strict=True):
            part = Range(int(start), int(count), int(offset))
            rows = _Part(self.job["columns"], self.job["id_name"], part.start)  # as the local job collects them
            errors = 0
            for chunk in self.source.read_range(part, self.job["batch_size"]):
                prepared = _prepare(self.scorer, chunk)  # image files read here, as the local job's decode pool does
                scored = self.scorer.results(prepared, self.scorer.predict(prepared, chunk.first_row))
                errors += sum(message is not None for message in scored["error"])
                rows.add(chunk, scored, self.scorer)
            tables.append(self._table(pa, rows.columns))
            # Fire and forget: the count is for people watching, and must never hold up or fail a range.
            self.tally.add.remote(self.node, part.start, part.count, errors)
        return pa.concat_tables(tables)

    def _table(self, pa: Any, columns: dict[str, list[Any]]) -> Any:
        """The range's rows with the local output's columns and types (ParquetOutput's schema)."""
        schema, id_name = self.job["schema"], self.job["id_name"]
        if id_name is not None and not self.job["id_keeps_type"]:
            columns[id_name] = [_text(value) for value in columns[id_name]]
        if id_name is None or not self.job["id_keeps_type"] or self.job["id_arrow_type"] is not None:
            return pa.table({name: columns[name] for name in schema.names}, schema=schema)
        # JSON ids into JSON Lines keep their JSON type where Arrow can hold them as one type.
        values = [_clean(value) if isinstance(value, str) else value for value in columns[id_name]]
        try:
            ids = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            ids = pa.array([_text(value) for value in columns[id_name]], pa.string())
        fields = [schema.field(name) if name != id_name else pa.field(name, ids.type) for name in schema.names]
        arrays = [ids if name == id_name else pa.array(columns[name], schema.field(name).type)
                  for name in schema.names]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))


class Tally:
    """Rows scored per node and errors per range, reported by the scorers (a Ray actor on the driver's node)."""

    def __init__(self) -> None:
        self.by_node: dict[str, int] = {}
        self.errors: dict[int, int] = {}  # range start -> errors (a range scored twice counts once)

    def add(self, node: str, start: int, rows: int, errors: int) -> None:
        self.by_node[node] = self.by_node.get(node, 0) + rows
        self.errors[start] = errors

    def read(self) -> tuple[dict[str, int], int]:
        return dict(self.by_node), sum(self.errors.values())


def run_on_ray(job: Job, settings: Settings, address: str, *, actors: int | None, cpus_per_actor: float,
               node_ip: str | None) -> int:
    """Score `job` on the cluster at `address` and write its output folder; the exit status."""
    started = time.monotonic()
    output = job.checkpoint.output
    ranges = job.source.ranges(job.part_rows)
    rows = sum(part.count for part in ranges)

    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise Refused("--ray needs Ray Data, which is not installed here (the ray extra: make deps, or "
                      "uv sync --locked --extra ray)") from None
    try:
        ray.init(address=address, _node_ip_address=node_ip, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, or a timeout, with Ray's own words
        raise Refused(f"cannot join the Ray cluster at {address!r} (--ray): {exc}") from None
    try:
        alive = [node for node in ray.nodes() if node["Alive"]]
        pool = actors or len(alive)
        tally: Any = ray.remote(num_cpus=0)(Tally).options(
            # On the driver's node, which outlives the job, unlike any other node.
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False),
        ).remote()
        partial = partial_folder(output)
        partial.mkdir()
        done = threading.Event()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                dataset = _dataset(ray, job, settings, ranges, tally, pool, cpus_per_actor)
                getattr(dataset, f"write_{_RAY_WRITERS[job.output.name]}")(str(partial.resolve()))
            except BaseException as exc:  # reported by the main thread
                failure.append(exc)
            finally:
                done.set()

        if ranges:
            threading.Thread(target=write, name="ray-data-write", daemon=True).start()
            try:
                _report_progress(ray, tally, rows, done)
            except KeyboardInterrupt:
                print(f"interrupted: the shards written so far are in {str(partial)!r}; delete it and run "
                      "the command again", file=sys.stderr)
                return 130
        if failure:
            print(f"the job failed on Ray; the shards written so far are in {str(partial)!r}: "
                  f"{type(failure[0]).__name__}: {failure[0]}", file=sys.stderr)
            return 1
        partial.rename(output)
        by_node, errors = ray.get(tally.read.remote())
    finally:
        ray.shutdown()
    seconds = time.monotonic() - started
    shards = sum(1 for path in output.iterdir() if path.is_file())
    nodes = ", ".join(f"{node} {count:,}" for node, count in sorted(by_node.items())) or "none"
    card = job.card
    print(f"scored {rows:,} rows ({errors:,} with an error) with {card.name} version {card.version} ({job.chosen}) "
          f"on Ray ({pool} actors of {cpus_per_actor:g} CPUs, {len(ranges)} ranges) in {seconds:.1f} s, "
          f"{rows / seconds if seconds else 0:,.0f} rows/s -> {output}/ ({shards} shards); rows scored per node: "
          f"{nodes}", file=sys.stderr)
    return 0


_RAY_WRITERS = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}


def _dataset(ray: Any, job: Job, settings: Settings, ranges: list[Range], tally: Any, actors: int,
             cpus_per_actor: float) -> Any:
    """The ranges, scored: one block per range, so that a lost node costs only the ranges it held."""
    source = job.source
    description = {
        "input": str(source.path.resolve()),
        "input_format": source.format,
        "text_column": job.text_column if source.kind == "text" else None,
        "id_column": job.manifest["id_column"],
        "encoding": job.manifest["encoding"] or "utf-8",
        "version_dir": str(job.version_dir.resolve()),
        "batch_size": job.batch_size,
        "columns": job.output.columns,
        "id_name": source.id_name,
        "schema": _schema(job),
        # As the local output writes ids: a Parquet input's keep their Arrow type, JSON Lines output keeps a
        # JSON id's type (where a range's ids share one: Arrow holds one type per column), else text.
        "id_arrow_type": source.id_arrow_type,
        "id_keeps_type": source.id_arrow_type is not None or job.output.name == "jsonl",
    }
    items = [asdict(part) for part in ranges]
    threads = max(1, int(cpus_per_actor))
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        RangeScorer,
        fn_constructor_args=(description, settings, tally),
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
        # TensorFlow's threads for the CPUs the actor holds, as python -m service sizes them.
        runtime_env={"env_vars": {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "2",
                                  "TF_CPP_MIN_LOG_LEVEL": "2"}},
    )


def _schema(job: Job) -> Any:
    from service.score.outputs import ParquetOutput

    output = job.output
    return ParquetOutput(output.columns, output.id_name, output.metadata, output.id_arrow_type).schema


def _report_progress(ray: Any, tally: Any, rows: int, done: threading.Event) -> None:
    """A line on stderr every PROGRESS_INTERVAL_S while the job runs: the rows each node has scored."""
    last = None
    while not done.wait(PROGRESS_INTERVAL_S):
        try:
            by_node, _ = ray.get(tally.read.remote(), timeout=PROGRESS_INTERVAL_S)
        except Exception:  # the tally is for people watching; a slow answer skips a line
            continue
        if by_node != last:
            scored = ", ".join(f"{node} {count:,}" for node, count in sorted(by_node.items()))
            print(f"rows scored per node: {scored} (the input has {rows:,})", file=sys.stderr, flush=True)
            last = by_node


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())

