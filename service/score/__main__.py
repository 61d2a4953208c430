"""`python -m service.score MODEL INPUT --output OUT`: score a file or a folder of images offline.

    python -m service.score sentiment-tweets tweets.csv --output scored.parquet --id-column id
    python -m service.score sentiment-imdb reviews.csv --encoding latin-1 --output scored.csv
    python -m service.score cifar10-cnn photos/ --output labels.jsonl --version 2
    python -m service.score sentiment-tweets tweets.csv --output scored.parquet --resume   # after a stop
    python -m service.score sentiment-imdb s3://bucket/reviews.csv --output scored.csv   # AWS_* credentials

MODEL is a model folder's name under SERVICE_ARTIFACTS_DIR (the service's settings apply: every
SERVICE_* variable, e.g. SERVICE_MAX_TEXT_CHARS); it is scored in this process with the service's
own loading, handlers and decoding, so the answers are the API's. Exit status: 0 when the output is
written (rows that could not be scored have an `error`), 1 when the model cannot be loaded, 2 when
the job is refused before any work (a missing file or column, an unknown format, an output that
exists), 130 when interrupted (continue with --resume). docs/scoring.md has the rest.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contract.layout import list_versions, model_dirs
from service.core.workers import tensorflow_threads
from service.rollout.policy import PolicyError, PolicyStore
from service.score.checkpoint import Checkpoint
from service.score.errors import Refused
from service.score.inputs import INPUT_FORMATS, Source, open_source
from service.score.outputs import OUTPUT_FORMATS, OutputFormat, infer_format, output_columns, output_format
from service.score.storage import URI
from service.settings import Settings

if TYPE_CHECKING:  # both import TensorFlow, which a refused job never needs
    from contract.card import ModelCard
    from service.score.job import Summary
    from service.score.scorer import BatchScorer

PROG = "python -m service.score"
DEFAULT_PART_ROWS = 4096


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model's name (a folder under SERVICE_ARTIFACTS_DIR)")
    parser.add_argument("input", help="a CSV, JSON Lines or Parquet file of texts, or a folder of images: a path, or "
                                      "a URI such as s3://bucket/reviews.csv or s3://bucket/photos/")
    parser.add_argument("--output", "-o", type=_output_path, required=True,
                        help="the scored rows: .csv, .jsonl or .parquet (a local or shared path)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, help="the output's format (default: from its extension)")
    parser.add_argument("--input-format", choices=INPUT_FORMATS,
                        help="the input's format (default: from its extension; a folder is images)")
    parser.add_argument("--text-column", default="text", help="the column holding the texts (default: text)")
    parser.add_argument("--id-column", help="a column copied to the output with each row (an image's id is its path)")
    parser.add_argument("--encoding", default="utf-8",
                        help="the encoding of a CSV or JSON Lines input (default: utf-8)")
    parser.add_argument("--version", type=_positive,
                        help="score with this version (default: the rollout policy's stable version, else the newest)")
    parser.add_argument("--batch-size", type=_batch_size, default=64, help="rows per model call (default: 64)")
    parser.add_argument("--part-rows", type=_positive, default=DEFAULT_PART_ROWS,
                        help="rows written and committed at a time, rounded up to a multiple of --batch-size: "
                             f"at most this many are scored again after an interruption (default: {DEFAULT_PART_ROWS})")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run of the same job where it stopped")
    ray = parser.add_argument_group("on a Ray cluster (docs/scoring.md, \"On Ray\")")
    ray.add_argument("--ray", metavar="ADDRESS",
                     help="run on the Ray cluster whose head is ADDRESS (HOST:PORT) through Ray Data; the input, "
                          "the model and --output (then a folder of shards) must be on storage every node reaches")
    ray.add_argument("--actors", type=_positive,
                     help="model copies scoring at once, one actor each (default: one per node of the cluster)")
    ray.add_argument("--cpus-per-actor", type=_cpus, default=1.0,
                     help="CPUs each actor claims, and TensorFlow's intra-op threads in it (default: 1)")
    ray.add_argument("--ray-node-ip", metavar="IP",
                     help="this machine's address in the cluster (default: Ray's guess; on loopback clusters "
                          "the node's own 127.0.0.x, never 127.0.0.1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        return _refuse(f"invalid settings:\n{exc}")
    try:
        job = plan(args, settings)
    except Refused as exc:
        return _refuse(str(exc))
    except Exception as exc:  # the card or the SavedModel is broken (contract.errors.ArtifactError)
        return _failed(exc)
    if args.ray is not None:
        from service.score.on_ray import run_on_ray

        try:
            return run_on_ray(job, settings, args.ray, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                              node_ip=args.ray_node_ip)
        except Refused as exc:
            return _refuse(str(exc))
    return run(job, settings)


@dataclass
class Job:
    """A job checked against its input, its output and its model's card: everything but the model."""

    source: Source
    output: OutputFormat
    checkpoint: Checkpoint
    version_dir: Path
    card: ModelCard
    chosen: str  # "newest", "stable" (the rollout policy's) or "pinned"
    batch_size: int
    part_rows: int
    manifest: dict[str, Any]
    text_column: str
    summary: Summary | None = None  # once it has run


def plan(args: argparse.Namespace, settings: Settings) -> Job:
    """Check everything that can be checked before the model loads; Refused, naming what is wrong, if not."""
    # The input and the output first: quickly, with no TensorFlow imported yet.
    source = open_source(args.input, args.input_format, args.text_column, args.id_column, args.encoding)
    output_name = infer_format(args.output, args.format)
    extension = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[output_name]
    if args.ray is None and args.actors is not None:
        raise Refused("--actors needs --ray")
    checkpoint = Checkpoint(args.output, extension, sharded=args.ray is not None)
    checkpoint.check_start(args.resume)
    version_dir, chosen = choose_version(settings, args.model, args.version)

    from contract.card import read_card

    card = read_card(version_dir)
    kind = "image" if card.task == "image-classification" else "text"
    if kind != source.kind:
        what = "a folder of images" if kind == "image" else "a CSV, JSON Lines or Parquet file of texts"
        raise Refused(f"model {card.name!r} ({card.task}) scores {what}, not {source.format} input "
                      f"{source.location.name!r}")
    columns = output_columns(source.id_name, card.labels)
    if source.id_name is not None and columns.count(source.id_name) > 1:
        raise Refused(f"--id-column {source.id_name!r} has the name of an output column; rename it in the input")
    metadata = {"model": card.name, "version": str(card.version), "version_chosen": chosen, "scored_by": PROG}
    output = output_format(output_name, columns, source.id_name, metadata, source.id_arrow_type)
    part_rows = math.ceil(args.part_rows / args.batch_size) * args.batch_size
    manifest = _manifest(args, source, card.name, card.version, output_name, part_rows)
    if args.resume:
        checkpoint.check_resume(manifest)
    return Job(source, output, checkpoint, version_dir, card, chosen, args.batch_size, part_rows, manifest,
               args.text_column)


def load_scorer(job: Job, settings: Settings) -> BatchScorer:
    from service.score.scorer import BatchScorer

    return BatchScorer(job.version_dir, settings, warm_up_rows=job.batch_size, text_column=job.text_column)


def run(job: Job, settings: Settings, scorer: BatchScorer | None = None) -> int:
    """Load the model (unless given), score, write; the exit status."""
    from service.score.job import score
    from service.score.progress import Progress

    if scorer is None:
        try:
            scorer = load_scorer(job, settings)
        except Exception as exc:  # contract.errors.ArtifactError, naming the folder
            return _failed(exc)
    checkpoint, card = job.checkpoint, job.card
    checkpoint.begin(job.manifest)
    first = checkpoint.rows_done
    progress = Progress(f"{card.name} v{card.version}", job.source.total_rows, first,
                        fraction_read=job.source.fraction_read)
    try:
        summary = score(job.source, scorer, job.output, checkpoint, batch_size=job.batch_size,
                        part_rows=job.part_rows, decode_threads=settings.decode_threads, progress=progress)
    except KeyboardInterrupt:
        progress.close(f"interrupted: rows 0 to {checkpoint.rows_done - 1} are written in "
                       f"{str(checkpoint.folder)!r}; the same command with --resume continues")
        return 130
    resumed = f", continuing from row {first}" if first else ""
    progress.close(f"scored {summary.rows:,} rows ({summary.errors:,} with an error{resumed}) with {card.name} "
                   f"version {card.version} ({job.chosen}) on {scorer.runtime.name} in {summary.seconds:.1f} s, "
                   f"{summary.rows_per_s:,.0f} rows/s -> {checkpoint.output}")
    job.summary = summary
    return 0


def choose_version(settings: Settings, model: str, pinned: int | None) -> tuple[Path, str]:
    """The version folder that scores, and why: the one --version pins, else the rollout policy's
    stable version where the model has a policy, else the newest.

    These are the versions the service answers an unpinned request with, but for a candidate's
    canary share: a bulk job scores with the version the policy vouches for, never a candidate.
    """
    artifacts = settings.artifacts_dir
    if not artifacts.is_dir():
        raise Refused(f"artifacts folder {str(artifacts)!r} does not exist (set SERVICE_ARTIFACTS_DIR)")
    names = [folder.name for folder in model_dirs(artifacts)]
    if model not in names:
        raise Refused(f"no model {model!r} in {str(artifacts)!r}; its models: {', '.join(names) or 'none'}")
    versions = list_versions(artifacts / model)
    if not versions:
        raise Refused(f"model {model!r} has no version folders in {str(artifacts / model)!r}")
    if pinned is not None:
        if pinned not in versions:
            raise Refused(f"version {pinned} of {model!r} does not exist (--version); its versions: "
                          f"{', '.join(map(str, versions))}")
        return artifacts / model / str(pinned), "pinned"
    store = PolicyStore(settings.rollout_dir or artifacts)
    try:
        policy = store.read(model)
    except PolicyError as exc:
        # A serving process keeps its last good policy; a job has none, and guessing could score a
        # whole file with the wrong version.
        raise Refused(f"{exc}; fix the policy, or name the version with --version") from None
    if policy is None:
        return artifacts / model / str(versions[-1]), "newest"
    if policy.stable not in versions:
        raise Refused(f"{store.path(model)}: the rollout policy's stable version {policy.stable} of {model!r} "
                      f"does not exist; its versions: {', '.join(map(str, versions))} (name one with --version)")
    return artifacts / model / str(policy.stable), "stable"


def _manifest(args: argparse.Namespace, source: Source, model: str, version: int, output_format: str,
              part_rows: int) -> dict[str, Any]:
    """What a resumed run must share with the run it continues (service.score.checkpoint)."""
    texts = source.kind == "text"
    return {
        "model": model,
        "version": version,
        "input": source.fingerprint(),
        "input_format": source.format,
        "text_column": args.text_column if texts else None,
        "id_column": args.id_column,
        "encoding": args.encoding if source.format in ("csv", "jsonl") else None,
        "output_format": output_format,
        "batch_size": args.batch_size,
        "part_rows": part_rows,
        "sharded": args.ray is not None,  # a --ray run's folder: shards, not parts to join
    }


def _failed(exc: Exception) -> int:
    from contract.errors import ArtifactError

    if not isinstance(exc, ArtifactError):
        raise exc
    print(f"{PROG}: {exc}", file=sys.stderr)
    return 1


def _refuse(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _output_path(text: str) -> Path:
    if URI.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a URI: the output is a local or shared path (object "
                                         "storage is read from, not written to)")
    return Path(text)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def _cpus(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of CPUs")
    return value


def _batch_size(text: str) -> int:
    value = _positive(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"{value} is more than 1024 rows per model call")
    return value


def tensorflow_environment() -> None:
    """TensorFlow's threads and log level as `python -m service` sets them, before TensorFlow is imported
    (explicit TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS and TF_CPP_MIN_LOG_LEVEL win).

    One intra-op thread fewer than the cores (docs/decisions/0004-tensorflow-thread-split.md): on the
    2-core machine each committed model's in-process rate was about the same with it as with
    TensorFlow's defaults (the ceilings of `python -m service.score.bench`, with and without
    `--threads tensorflow`), and with it reading and writing keep a share of a core.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for variable, threads in tensorflow_threads(os.cpu_count() or 1).items():
        os.environ.setdefault(variable, threads)


if __name__ == "__main__":
    tensorflow_environment()
    sys.exit(main())
