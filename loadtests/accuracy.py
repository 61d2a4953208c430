"""python -m loadtests.accuracy: the served models' accuracy and calibration on whole test splits, over HTTP.

Starts the service on the committed models (the default runtime unless `--runtime` says otherwise,
or uses `--url`'s), sends every input of each model's test split through the public API, and
scores the answers against the true labels:

- cifar10-cnn: the 10,000 CIFAR-10 test JPEGs of `cifar10-jpeg.zip`, read in place and sent as the
  files they are (multipart `POST /classify-image`, every label's probability asked for);
- sentiment-imdb: the 25,000 IMDB test reviews (`POST /sentiment`);
- sentiment-tweets: the card's stratified test split of the GOP debate tweets.

For each: accuracy and expected calibration error (contract.verification's definition, the card's:
top-1 confidence, 15 equal-width bins), beside the card's figures for the same split, and whether they
meet the runtime issue's bounds (accuracy within 0.3 points of the card, ECE at most 0.03). The
version and the runtime that answered are read from `GET /models/{name}`. Exits 1 if a bound is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contract.verification import ECE_BINS, expected_calibration_error
from loadtests.server import REPO, running_service
from training.image_data import split_files
from training.text_data import read_imdb, read_tweets

DATASETS = REPO.parent / "shared" / "datasets"
MAX_ACCURACY_DROP = 0.003  # the bound: within 0.3 points of the card
MAX_ECE = 0.03


@dataclass
class Split:
    """A model's test inputs and their true classes, as indices into the model's labels."""

    model: str
    inputs: list[bytes] | list[str]  # JPEG files or texts
    labels: np.ndarray
    description: str


@dataclass
class Result:
    model: str
    version: int
    runtime: str
    split: str
    count: int
    accuracy: float
    ece: float
    card_accuracy: float | None
    card_ece: float | None
    seconds: float

    def failures(self) -> list[str]:
        found = []
        if self.card_accuracy is not None and abs(self.accuracy - self.card_accuracy) > MAX_ACCURACY_DROP:
            found.append(f"accuracy {self.accuracy:.2%} is more than {MAX_ACCURACY_DROP:.1%} from the card's "
                         f"{self.card_accuracy:.2%}")
        if self.ece > MAX_ECE:
            found.append(f"ECE {self.ece:.4f} is above {MAX_ECE}")
        return found


def cifar_split(path: Path, model: str, labels: list[str]) -> Split:
    with zipfile.ZipFile(path) as archive:
        files = split_files(archive.namelist(), "test")
        unknown = sorted(set(files) - set(labels))
        if unknown:
            raise SystemExit(f"{path}: classes {unknown} are not among {model}'s labels {labels}")
        pairs = [(archive.read(name), labels.index(label)) for label, names in files.items() for name in names]
    return Split(model, [jpeg for jpeg, _ in pairs], np.array([y for _, y in pairs]),
                 f"the test split of {path.name} ({len(pairs):,} JPEGs)")


def text_split(texts: list[str], true: np.ndarray, names: list[str], model: str, labels: list[str],
               description: str) -> Split:
    """Texts whose classes index `names` (the dataset's label names), re-indexed into the model's labels."""
    missing = sorted(set(names) - set(labels))
    if missing:
        raise SystemExit(f"{model}'s labels {labels} lack the dataset's {missing}")
    order = np.array([labels.index(name) for name in names])
    return Split(model, texts, order[true], description)


def _post(url: str, body: bytes, content_type: str) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def image_probabilities(base_url: str, model: str, labels: list[str], jpegs: Sequence[bytes]) -> np.ndarray:
    """Every label's probability for each JPEG, from one multipart request."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{i}.jpg"\r\n'
             f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg + b"\r\n" for i, jpeg in enumerate(jpegs)]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    answer = _post(f"{base_url}/classify-image?model={model}&top_k={len(labels)}", body,
                   f"multipart/form-data; boundary={boundary}")
    rows = np.zeros((len(jpegs), len(labels)), np.float64)
    for row, result in zip(rows, answer["results"], strict=True):
        for entry in result["top_k"]:
            row[labels.index(entry["label"])] = entry["probability"]
    return rows


def text_probabilities(base_url: str, model: str, labels: list[str], texts: Sequence[str]) -> np.ndarray:
    """Every label's probability for each text, from one request."""
    answer = _post(f"{base_url}/sentiment", json.dumps({"texts": list(texts), "model": model}).encode(),
                   "application/json")
    return np.array([[result["probabilities"][label] for label in labels] for result in answer["results"]])


def describe(base_url: str, model: str) -> dict[str, Any]:
    """The serving version of `model`: its card and runtime, as GET /models/{name} gives them."""
    with urllib.request.urlopen(f"{base_url}/models/{model}", timeout=10) as response:
        info = json.load(response)
    return next(v for v in info["versions"] if v["version"] == info["serving_version"])


def evaluate(base_url: str, split: Split, per_request: int, concurrency: int) -> Result:
    version = describe(base_url, split.model)
    card, labels = version["card"], version["card"]["labels"]
    ask: Callable[..., np.ndarray] = (image_probabilities if isinstance(split.inputs[0], bytes)
                                      else text_probabilities)
    chunks = [split.inputs[start : start + per_request] for start in range(0, len(split.inputs), per_request)]
    started = time.perf_counter()
    # A few requests in flight at once, so that the service batches as it does under load.
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda chunk: ask(base_url, split.model, labels, chunk), chunks))
    seconds = time.perf_counter() - started
    probabilities = np.concatenate(answers)
    calibration = (card.get("calibration") or {}).get("test", {}).get("after", {})
    return Result(split.model, version["version"], version["runtime"]["name"], split.description,
                  len(split.labels), float(np.mean(probabilities.argmax(axis=1) == split.labels)),
                  expected_calibration_error(probabilities, split.labels, ECE_BINS),
                  card["evaluation"].get("accuracy"), calibration.get("ece"), round(seconds, 1))


def splits(args: argparse.Namespace, base_url: str) -> list[Split]:
    """The test splits asked for (`--only`), each read with its training reader."""
    found: list[Split] = []

    def wanted(model: str) -> list[str] | None:
        if args.only and args.only not in model:
            return None
        labels: list[str] = describe(base_url, model)["card"]["labels"]
        return labels

    if (labels := wanted(args.image_model)) is not None:
        found.append(cifar_split(args.cifar10, args.image_model, labels))
    if (labels := wanted(args.imdb_model)) is not None:
        imdb = read_imdb(args.imdb)
        found.append(text_split(imdb.test.texts, imdb.test.labels, imdb.labels, args.imdb_model, labels,
                                imdb.test_split))
    if args.tweets and (labels := wanted(args.tweets_model)) is not None:
        tweets = read_tweets(args.tweets)
        found.append(text_split(tweets.test.texts, tweets.test.labels, tweets.labels, args.tweets_model, labels,
                                tweets.test_split))
    return found


def report(results: list[Result]) -> str:
    lines = ["| model (version, runtime) | split | inputs | accuracy | card | ECE | card | bounds met | seconds |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        card_accuracy = "" if r.card_accuracy is None else f"{r.card_accuracy:.2%}"
        card_ece = "" if r.card_ece is None else f"{r.card_ece:.4f}"
        verdict = "; ".join(r.failures()) or "yes"
        lines.append(f"| {r.model} (v{r.version}, {r.runtime}) | {r.split} | {r.count:,} | {r.accuracy:.2%} | "
                     f"{card_accuracy} | {r.ece:.4f} | {card_ece} | {verdict} | {r.seconds} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, base_url: str) -> list[Result]:
    results = []
    for split in splits(args, base_url):
        per_request = args.images_per_request if isinstance(split.inputs[0], bytes) else args.texts_per_request
        results.append(evaluate(base_url, split, per_request, args.concurrency))
        print(json.dumps(asdict(results[-1])), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running service to ask (default: start one on --artifacts)")
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts", help="the models to serve")
    parser.add_argument("--runtime", help="SERVICE_RUNTIME for the service started here (default: its own)")
    parser.add_argument("--only", help="only the models whose name contains this")
    parser.add_argument("--cifar10", type=Path, default=DATASETS / "cifar10-jpeg.zip",
                        help="an image-folder zip <root>/test/<class>/<image>")
    parser.add_argument("--imdb", type=Path, default=DATASETS / "aclImdb_v1_labelled.tar.gz")
    parser.add_argument("--tweets", type=Path, default=DATASETS / "gop-debate" / "Sentiment.csv",
                        help="the GOP debate tweets (an empty value leaves them out)")
    parser.add_argument("--image-model", default="cifar10-cnn")
    parser.add_argument("--imdb-model", default="sentiment-imdb")
    parser.add_argument("--tweets-model", default="sentiment-tweets")
    parser.add_argument("--images-per-request", type=int, default=16)
    parser.add_argument("--texts-per-request", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    args = parser.parse_args(argv)
    if args.tweets == Path():
        args.tweets = None

    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.url:
        results = run(args, args.url.rstrip("/"))
    else:
        env = {"SERVICE_RUNTIME": args.runtime} if args.runtime else {}
        with tempfile.TemporaryDirectory() as tmp, running_service(
            args.artifacts, Path(tmp) / "service.log", 180, extra_env=env, log_level="warning"
        ) as service:
            results = run(args, service.base_url)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(report(results))
    return 1 if any(result.failures() for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
