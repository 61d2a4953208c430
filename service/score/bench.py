"""Offline scoring against the in-process ceiling, on the committed models and real data.

    python -m service.score.bench [--rounds 5] [--only tweets] [--rows 5000] [--threads tensorflow]

It lives here, not in loadtests/ (which reaches the service over HTTP only), because what it
measures is the in-process scorer of `python -m service.score` (reading, decoding, the model
calls, writing the output).

Three jobs, each on the newest version of a committed model:
  - sentiment-tweets: every GOP debate tweet, the dataset's own CSV (id column `id`) -> Parquet;
  - sentiment-imdb: the first `--rows` IMDB test reviews, as JSON Lines (id: the file name) -> CSV;
  - cifar10-cnn: `--rows` CIFAR-10 test JPEGs (evenly spaced), as a folder of images -> JSON Lines.
The reviews and the images are extracted once into .cache/score-bench/ (ignored by git).

The ceiling: the same inputs, as the model takes them (UTF-8 texts; the images decoded by the
service's decoder), through the SavedModel's `serving_default` in batches of 64, in this process
(contract.savedmodel.load_model(...).predict), after a warm-up. After one untimed pass of each
(the warm-up), each round times one pass of the ceiling and one whole scoring job (from its first
read to its output file written; the model loaded once, before the rounds), and the table gives
each job's round with the median share of its round's ceiling: this machine's speed drifts within
minutes, so the two are alternated.

TensorFlow gets the threads `python -m service.score` gives it, the service's split
(service.core.workers.tensorflow_threads: one intra-op thread fewer than the cores), unless
TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS are set; `--threads tensorflow` leaves TensorFlow's
own defaults (every core) instead, for the ceiling and the scorer alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.score.job import Summary

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"
CACHE = REPO / ".cache" / "score-bench"
CEILING_BATCH = 64


@dataclass
class ScoringJob:
    """One model's job: the command's arguments (without --output) and the rows its model takes."""

    name: str
    model: str
    arguments: list[str]
    output_suffix: str
    model_inputs: Callable[[], Any]  # the ceiling's inputs: texts as bytes, or decoded images


@dataclass
class Round:
    ceiling: float  # rows/s
    scorer: float  # rows/s
    rows: int
    errors: int
    seconds: float  # the scoring job's time

    @property
    def share(self) -> float:
        return self.scorer / self.ceiling


@dataclass
class Result:
    job: str
    model: str
    version: int
    command: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def median(self) -> Round:
        """The round with the median share (the lower middle one of an even count): one real run."""
        return sorted(self.rounds, key=lambda r: r.share)[(len(self.rounds) - 1) // 2]


def _imdb_jsonl(datasets: Path, count: int) -> Path:
    path = CACHE / f"imdb-test-{count}.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        with tarfile.open(datasets / "aclImdb_v1_labelled.tar.gz") as archive:
            for member in archive:
                if "/test/" in member.name and member.name.endswith(".txt") and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None
                    text = handle.read().decode("utf-8")
                    lines.append(json.dumps({"id": member.name.split("/test/")[1], "text": text}) + "\n")
                    if len(lines) == count:
                        break
        _write_atomically(path, lambda temporary: temporary.write_text("".join(lines), encoding="utf-8"))
    return path


def _cifar_folder(datasets: Path, count: int) -> Path:
    folder = CACHE / f"cifar10-test-{count}"
    if not folder.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE, prefix=".staging-"))
        with zipfile.ZipFile(datasets / "cifar10-jpeg.zip") as archive:
            names = sorted(n for n in archive.namelist() if "/test/" in n and n.lower().endswith(".jpg"))
            step = max(1, len(names) // count)
            for name in names[::step][:count]:
                target = staging / name.split("/test/")[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
        staging.rename(folder)
    return folder


def _write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    temporary.replace(path)


def jobs(datasets: Path, rows: int) -> list[ScoringJob]:
    import csv

    tweets_csv = datasets / "gop-debate" / "Sentiment.csv"

    def tweets() -> list[bytes]:
        with open(tweets_csv, encoding="utf-8", newline="") as handle:
            return [row["text"].encode("utf-8") for row in csv.DictReader(handle)]

    reviews_jsonl = _imdb_jsonl(datasets, rows)

    def reviews() -> list[bytes]:
        with open(reviews_jsonl, encoding="utf-8") as handle:
            return [json.loads(line)["text"].encode("utf-8") for line in handle]

    images_folder = _cifar_folder(datasets, rows)

    def images() -> Any:
        import numpy as np

        from contract.card import read_card
        from contract.layout import newest_version_dir
        from service.core.imaging import decode_image

        card = read_card(newest_version_dir(REPO / "artifacts" / "cifar10-cnn"))
        height, width = card.input.height, card.input.width  # type: ignore[attr-defined]
        files = sorted(p for p in images_folder.rglob("*") if p.is_file())
        return np.stack([decode_image(p.read_bytes(), height, width, 40_000_000)[0] for p in files])

    return [
        ScoringJob("tweets", "sentiment-tweets", [str(tweets_csv), "--id-column", "id"], ".parquet", tweets),
        ScoringJob("reviews", "sentiment-imdb", [str(reviews_jsonl), "--id-column", "id"], ".csv", reviews),
        ScoringJob("images", "cifar10-cnn", [str(images_folder)], ".jsonl", images),
    ]


def ceiling_rate(predict: Callable[[Any], Any], inputs: Any) -> float:
    """Rows/s of one pass over `inputs` in batches of CEILING_BATCH (the last one may be shorter)."""
    batches = [inputs[start : start + CEILING_BATCH] for start in range(0, len(inputs), CEILING_BATCH)]
    started = time.perf_counter()
    for batch in batches:
        predict(batch)
    return len(inputs) / (time.perf_counter() - started)


def measure(job: ScoringJob, artifacts: Path, rounds: int, workdir: Path) -> Result:
    from contract.layout import newest_version_dir
    from contract.savedmodel import load_model
    from service.score.__main__ import build_parser, load_scorer, plan, run
    from service.settings import Settings

    settings = Settings(artifacts_dir=artifacts)
    model = load_model(newest_version_dir(artifacts / job.model))
    inputs = job.model_inputs()
    scorer: Any = None

    def scoring_job(turn: int | str) -> Summary:
        nonlocal scorer
        output = workdir / f"{job.name}-{turn}{job.output_suffix}"
        # Pinned to the ceiling's version, the newest, whatever a rollout policy would choose.
        pinned = ["--version", str(model.card.version)]
        planned = plan(build_parser().parse_args([job.model, *job.arguments, *pinned, "--output", str(output)]),
                       settings)
        if scorer is None:
            scorer = load_scorer(planned, settings)  # loaded once, like the ceiling's model
        status = run(planned, settings, scorer)
        assert status == 0 and planned.summary is not None, f"the scoring job failed with status {status}"
        output.unlink()
        return planned.summary

    # The warm-up: one untimed pass of each. The text models' batches differ in length, and the first
    # pass over a dataset is slower for both (TensorFlow's caches, the allocator), by more than the margin.
    ceiling_rate(model.predict, inputs)
    scoring_job("warm-up")
    result = Result(job.name, job.model, model.card.version,
                    f"python -m service.score {job.model} {' '.join(job.arguments)} --version {model.card.version} "
                    f"--output OUT{job.output_suffix}")
    for turn in range(rounds):
        ceiling = ceiling_rate(model.predict, inputs)
        summary = scoring_job(turn)
        result.rounds.append(Round(ceiling, summary.rows_per_s, summary.rows, summary.errors, summary.seconds))
        print(f"{job.name} round {turn + 1}: ceiling {ceiling:,.0f} rows/s, scorer {summary.rows_per_s:,.0f} "
              f"rows/s ({summary.rows:,} rows, {summary.errors} with an error, {summary.seconds:.1f} s): "
              f"{summary.rows_per_s / ceiling:.3f} of the ceiling", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts", help="the committed models")
    parser.add_argument("--datasets", type=Path, default=DATASETS,
                        help="folder with cifar10-jpeg.zip, aclImdb_v1_labelled.tar.gz, gop-debate/Sentiment.csv")
    parser.add_argument("--rows", type=int, default=5000, help="reviews and images per job (tweets: all 13,871)")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of ceiling and scorer per job")
    parser.add_argument("--only", help="run only the jobs whose name (tweets, reviews, images) contains this")
    parser.add_argument("--threads", choices=("scorer", "tensorflow"), default="scorer",
                        help="TensorFlow's thread pools: as python -m service.score sets them (the service's "
                             "split), or TensorFlow's own defaults")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="where the JSON results go")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.threads == "scorer":  # before TensorFlow is imported
        from service.score.__main__ import tensorflow_environment

        tensorflow_environment()
    from contract.speed import machine_description

    chosen = [job for job in jobs(args.datasets, args.rows) if not args.only or args.only in job.name]
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="score-bench-"))
    try:
        results = [measure(job, args.artifacts, args.rounds, workdir) for job in chosen]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    pools = ", ".join(f"{name}={os.environ.get(name, 'unset (TensorFlow: every core)')}"
                      for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"))
    print(f"\n{args.rounds} alternating rounds per job, the median round's share; {pools}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {machine_description()}\n")
    print("| job | model (version) | rows | errors | ceiling rows/s | scorer rows/s | share of ceiling "
          "| shares of every round |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for result in results:
        best = result.median
        shares = ", ".join(f"{r.share:.3f}" for r in result.rounds)
        print(f"| {result.job} | {result.model} (v{result.version}) | {best.rows:,} | {best.errors} | "
              f"{best.ceiling:,.0f} | {best.scorer:,.0f} | {best.share:.3f} | {shares} |")
    print()
    for result in results:
        print(f"{result.job}: {result.command}")
    records = [asdict(result) | {"median_share": result.median.share} for result in results]
    (args.out / "score-bench.json").write_text(json.dumps(records, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
