"""Benchmark the service on the committed models: batching on, batching off, and the ceiling.

    python -m loadtests.bench [--rounds 3] [--only tweets] [--compare-tree ../other-checkout] [--runtimes] [--rollouts]

For each endpoint it starts the real service (`python -m service`), drives it with wrk at a
fixed concurrency with real inputs (CIFAR-10 test JPEGs, IMDB test reviews, GOP tweets), and
prints requests/s and p50/p95/p99 latency for:
  - batching on: the default settings;
  - batching off: SERVICE_MAX_BATCH_SIZE=1, one model call per request;
  - the ceiling: the newest version called in-process with batches of 64 of the same inputs,
    no HTTP, on the runtime the service run used (`python -m service.measure_runtimes` in a
    process of its own: the benchmark reaches the service only through its commands and HTTP);
  - the same at the service's largest batch (SERVICE_MAX_BATCH_SIZE's default, 32): at
    concurrency 32 no batch can be larger, so "share of batch-32 rate" is the share of what the
    model itself could do with the batches it was given, the rest being the cost of serving.
Each row also says what the model did during the run, read from the service's own `/metrics`:
the mean batch size, and the share of the run's time a model call was running ("model busy").
Below 1.0 the model waited for the service (HTTP, queueing); near 1.0 only the model limits.

This machine's speed drifts by more than the differences worth measuring, so every endpoint is
measured in rounds: each round runs every service configuration once (every other round in
reverse order), then the ceilings, and a row's shares are of its own round's ceilings; the table
gives, per configuration, the round with the median share. With `--compare-tree`, each service
run is followed by one of another checkout's service (an older commit, say); `--variant` does
the same for this build under other environment variables. `--runtimes` compares float32
(`SERVICE_RUNTIME=tensorflow`) with the default runtime choice (`auto`), served and in-process,
in place of batching off. `--rollouts` adds the cost of a rollout (docs/rollouts.md): batching
on with 10% and with 100% of requests shadowed to the model's previous version, and with the
payload log keeping every request. wrk (Debian's `wrk` package) generates the load: a Python client on the
same two cores would measure itself more than the service.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from contract.card import read_card
from contract.layout import newest_version_dir
from contract.speed import machine_description
from loadtests.server import REPO, running_service

DATASETS = REPO.parent / "shared" / "datasets"
INPUTS = 256  # distinct request bodies per scenario, sent round-robin (padding depends on the text mix)
CEILING_BATCH = 64
SERVED_BATCH = 32  # SERVICE_MAX_BATCH_SIZE's default (a test keeps the two equal)
MULTIPART_IMAGES = 4  # images per multipart request
V2_IMAGES = 8  # images per v2 binary tensor request
BOUNDARY = "bench-boundary-7d3f"

WRK_SCRIPT = """
local bodies = {}
local count = 0
init = function(args)
  for path in io.lines(args[1]) do
    local file = io.open(path, "rb"); count = count + 1; bodies[count] = file:read("*all"); file:close()
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[2]
  if args[3] ~= nil and args[3] ~= "" then wrk.headers[args[3]] = args[4] end
end
local i = 0
request = function()
  i = i % count + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, e.timeout, 0))
end
"""


@dataclass
class Scenario:
    """One endpoint driven with one model's real inputs."""

    name: str
    model: str
    path: str
    content_type: str
    bodies: list[bytes]
    model_inputs: object  # what the model takes in-process: an image array or a list of texts
    items_per_request: int = 1
    header: tuple[str, str] | None = None  # one more request header, the same for every body


@dataclass
class Row:
    scenario: str
    mode: str
    requests_per_s: float  # items/s for the in-process ceiling
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failed: int
    items_per_request: int = 1
    load_s: float | None = None  # how long wrk sent load (service rows)
    mean_batch: float | None = None  # inputs per model call during the run (service rows)
    model_busy: float | None = None  # share of the run's time a model call was running (service rows)
    ceiling: float | None = None  # in-process items/s at CEILING_BATCH, measured in this run's round
    batch_rate: float | None = None  # in-process items/s at SERVED_BATCH, measured in this run's round
    runtime: str | None = None  # the runtime the model ran on (auto's choice under its own name)

    @property
    def items_per_s(self) -> float:
        return self.requests_per_s * self.items_per_request

    @property
    def share(self) -> float | None:
        """This service run's share of the ceiling measured right after it."""
        return None if self.ceiling is None else self.items_per_s / self.ceiling


def cifar_jpegs(path: Path, count: int) -> list[bytes]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if "/test/" in n and n.lower().endswith(".jpg"))
        step = max(1, len(names) // count)
        return [archive.read(name) for name in names[::step][:count]]


def imdb_reviews(path: Path, count: int) -> list[str]:
    reviews = []
    with tarfile.open(path) as archive:
        for member in archive:
            if "/test/" in member.name and member.name.endswith(".txt") and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                reviews.append(handle.read().decode("utf-8"))
                if len(reviews) == count:
                    break
    return reviews


def tweets(path: Path, count: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:count]


def _pixels(jpeg: bytes, height: int, width: int) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return np.asarray(image if image.size == (width, height) else image.resize((width, height)))


def _multipart(jpegs: list[bytes]) -> bytes:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{i}.jpg"\r\n'
             f"Content-Type: image/jpeg\r\n\r\n".encode() + jpeg + b"\r\n" for i, jpeg in enumerate(jpegs)]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def scenarios(artifacts: Path, datasets: Path) -> list[Scenario]:
    found = []
    images = cifar_jpegs(datasets / "cifar10-jpeg.zip", INPUTS)
    card = read_card(newest_version_dir(artifacts / "cifar10-cnn"))
    height, width = card.input.height, card.input.width  # type: ignore[attr-defined]
    decoded = np.stack([_pixels(b, height, width) for b in images])
    found.append(Scenario("classify-image", "cifar10-cnn", "/classify-image?model=cifar10-cnn", "image/jpeg",
                          images, decoded))
    groups = [images[i : i + MULTIPART_IMAGES] for i in range(0, len(images), MULTIPART_IMAGES)]
    found.append(Scenario(f"classify-image, multipart x{MULTIPART_IMAGES}", "cifar10-cnn",
                          "/classify-image?model=cifar10-cnn", f"multipart/form-data; boundary={BOUNDARY}",
                          [_multipart(group) for group in groups], decoded, MULTIPART_IMAGES))
    head = json.dumps({"inputs": [{"name": "images", "shape": [V2_IMAGES, height, width, 3], "datatype": "UINT8",
                                   "parameters": {"binary_data_size": V2_IMAGES * height * width * 3}}]}).encode()
    v2_bodies = [head + decoded[i : i + V2_IMAGES].tobytes() for i in range(0, len(decoded), V2_IMAGES)]
    found.append(Scenario(f"v2 infer, binary x{V2_IMAGES}", "cifar10-cnn", "/v2/models/cifar10-cnn/infer",
                          "application/octet-stream", v2_bodies, decoded, V2_IMAGES,
                          ("Inference-Header-Content-Length", str(len(head)))))
    for model, texts in (
        ("sentiment-imdb", imdb_reviews(datasets / "aclImdb_v1_labelled.tar.gz", INPUTS)),
        ("sentiment-tweets", tweets(datasets / "gop-debate" / "Sentiment.csv", INPUTS)),
    ):
        bodies = [json.dumps({"text": text, "model": model}).encode() for text in texts]
        found.append(Scenario(f"sentiment ({model})", model, "/sentiment", "application/json", bodies,
                              [t.encode() for t in texts]))
    return found


def run_wrk(url: str, scenario: Scenario, workdir: Path, concurrency: int, duration: int, threads: int) -> Row:
    listing = workdir / "bodies.txt"
    paths = []
    for index, body in enumerate(scenario.bodies):
        path = workdir / f"body-{index}"
        path.write_bytes(body)
        paths.append(str(path))
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    header = scenario.header or ("", "")
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
               url, "--", str(listing), scenario.content_type, *header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests, duration_us, p50, p95, p99, socket_errors, status_errors, _, _ = map(int, match.group(1).split())
    ok = requests - status_errors
    return Row(scenario.name, "", ok / (duration_us / 1e6), p50 / 1000, p95 / 1000, p99 / 1000,
               status_errors + socket_errors, scenario.items_per_request, duration_us / 1e6)


@dataclass
class ModelActivity:
    """One model's batcher totals from the service's /metrics (all its versions added up)."""

    calls: float = 0
    inputs: float = 0
    seconds: float = 0  # time spent in model calls

    @classmethod
    def read(cls, base_url: str, model: str) -> ModelActivity:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        totals = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("model") != model:
                    continue
                if sample.name == "service_batch_size_count":
                    totals.calls += sample.value
                elif sample.name == "service_batch_size_sum":
                    totals.inputs += sample.value
                elif sample.name == "service_model_inference_seconds_sum":
                    totals.seconds += sample.value
        return totals

    def note_on(self, row: Row, before: ModelActivity) -> None:
        """Put what the model did between `before` and this reading, over `row`'s load, on `row`."""
        calls = self.calls - before.calls
        if calls > 0 and row.load_s:
            row.mean_batch = (self.inputs - before.inputs) / calls
            row.model_busy = (self.seconds - before.seconds) / row.load_s


def measure_service(base_url: str, scenario: Scenario, workdir: Path, concurrency: int, duration: int,
                    threads: int) -> Row:
    """wrk against a running service, with the model's activity over the run."""
    before = ModelActivity.read(base_url, scenario.model)
    row = run_wrk(base_url + scenario.path, scenario, workdir, concurrency, duration, threads)
    ModelActivity.read(base_url, scenario.model).note_on(row, before)
    return row


def in_process_rates(artifacts: Path, scenario: Scenario, runtimes: list[str], batch_sizes: tuple[int, ...],
                     seconds: float, workdir: Path) -> dict[str, list[Row]]:
    """Per runtime, one row per batch size: items/s of the newest version cycling through the scenario's
    inputs in batches of that size, the runtimes in the order given ('auto': the one the service's auto
    would choose, under its own name).

    Measured by `python -m service.measure_runtimes` in a process of its own: the runtimes are the
    service's, and the benchmark reaches the service only through its commands and HTTP."""
    inputs: Any = scenario.model_inputs
    if isinstance(inputs, np.ndarray):
        path = workdir / "inputs.npy"
        np.save(path, inputs)
    else:
        path = workdir / "inputs.json"
        path.write_text(json.dumps([text.decode() for text in inputs]), encoding="utf-8")
    command = [sys.executable, "-m", "service.measure_runtimes", str(newest_version_dir(artifacts / scenario.model)),
               "--inputs", str(path), "--rounds", "1", "--seconds", str(seconds),
               *(f"--batch-size={size}" for size in batch_sizes), *(f"--runtime={name}" for name in runtimes)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO,
                            env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"}).stdout
    result = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    rows: dict[str, list[Row]] = {}
    for key, rate in result["items_per_second"].items():
        name, _, size = key.partition("@")
        mode = f"in-process {scenario.model}, batch {size}, {name}"
        rows.setdefault(name, []).append(Row(scenario.name, mode, rate, None, None, None, 0, runtime=name))
    rows["auto"] = rows[result["chosen"]["name"]]
    return rows


def runtime_of(env: dict[str, str]) -> str:
    """The SERVICE_RUNTIME a service run with `env` added has."""
    return env.get("SERVICE_RUNTIME", os.environ.get("SERVICE_RUNTIME", "auto"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts", help="the models to serve")
    parser.add_argument("--datasets", type=Path, default=DATASETS,
                        help="folder with cifar10-jpeg.zip, aclImdb_v1_labelled.tar.gz, gop-debate/Sentiment.csv")
    parser.add_argument("--concurrency", type=int, default=32, help="open connections, each one request at a time")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per measurement")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the machine has 2 cores)")
    parser.add_argument("--only", help="run only the scenarios whose name contains this")
    parser.add_argument("--workers", type=int, default=1,
                        help="also measure batching on with this many worker processes (SERVICE_WORKERS)")
    parser.add_argument("--variant", action="append", default=[], type=_variant, metavar="LABEL:VAR=VALUE[,...]",
                        help="also measure batching on with these environment variables (repeatable), "
                             "e.g. intra2:TF_NUM_INTRAOP_THREADS=2")
    parser.add_argument("--compare-tree", type=Path,
                        help="another checkout whose service runs right after each run of this one")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per endpoint, each with its own ceiling; the median round is reported")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="where the JSON results go")
    parser.add_argument("--runtimes", action="store_true",
                        help="compare SERVICE_RUNTIME=tensorflow (float32) with the default (auto), batching on, "
                             "served and in-process, instead of batching on and off, on the one-item-per-request "
                             "scenarios (one JPEG, one review, one tweet; --only narrows them)")
    parser.add_argument("--rollouts", action="store_true",
                        help="also measure shadowing 10%% and 100%% of requests to the previous version, "
                             "and the payload log at 100%%")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk (or your system's package)")

    trees = {"": REPO} | ({f" [{args.compare_tree.name}]": args.compare_tree.resolve()} if args.compare_tree else {})
    modes: list[tuple[str, dict[str, str]]] = [(ON, {})]
    modes.append((FLOAT32, {"SERVICE_RUNTIME": "tensorflow"}) if args.runtimes
                 else (OFF, {"SERVICE_MAX_BATCH_SIZE": "1"}))
    if args.workers > 1:
        modes.append((f"batching on, {args.workers} worker processes", {"SERVICE_WORKERS": str(args.workers)}))
    modes += [(f"batching on, {label}", env) for label, env in args.variant]
    runs: dict[tuple[str, str], list[Row]] = {}  # (scenario, mode) -> one row per round, in-process rows too
    chosen = [s for s in scenarios(args.artifacts, args.datasets)
              if (not args.only or args.only in s.name) and (not args.runtimes or s.items_per_request == 1)]
    if not chosen:
        parser.error(f"no scenario's name contains {args.only!r}; the scenarios: "
                     + ", ".join(repr(s.name) for s in scenarios(args.artifacts, args.datasets)))
    args.out.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="bench-"))  # rollout policies, payload logs, in-process inputs
    for scenario in chosen:
        extra = rollout_modes(args.artifacts, scenario.model, workspace) if args.rollouts else []
        runtimes = list(dict.fromkeys(runtime_of(env) for _, env in modes + extra))
        for turn in range(args.rounds):
            served = []
            # Every other round runs the configurations in the reverse order, so that what runs first
            # (after a pause, or on a machine speeding up or slowing down) is not always the same.
            order = modes + extra if turn % 2 == 0 else (modes + extra)[::-1]
            for mode, env in order:
                for suffix, tree in trees.items():
                    with tempfile.TemporaryDirectory() as tmp, running_service(
                        args.artifacts, args.out / "service.log", 120, tree, extra_env=env, log_level="warning"
                    ) as service:
                        row = measure_service(service.base_url, scenario, Path(tmp), args.concurrency,
                                              args.duration, args.wrk_threads)
                        if "SERVICE_ROLLOUT_DIR" in env:
                            print(f"  {mode}: {shadow_outcomes(service.base_url, scenario.model)}", flush=True)
                    row.mode = mode + suffix
                    served.append((row, runtime_of(env)))
            # The ceilings right after the round's service runs: this machine's speed drifts over minutes.
            # Each run is judged by the rates of the runtime it served on.
            rates = in_process_rates(args.artifacts, scenario, runtimes if turn % 2 == 0 else runtimes[::-1],
                                     (CEILING_BATCH, SERVED_BATCH), args.duration / 2, workspace)
            for row, runtime in served:
                ceiling, batch_rate = rates[runtime]
                row.ceiling, row.batch_rate = ceiling.requests_per_s, batch_rate.requests_per_s
                row.runtime = ceiling.runtime
            measured = {id(row): row for group in rates.values() for row in group}
            for row in [row for row, _ in served] + sorted(measured.values(), key=lambda r: r.mode):
                runs.setdefault((scenario.name, row.mode), []).append(row)
                print(_format(row), f"round {turn + 1}" if args.rounds > 1 else "", flush=True)

    rounds = f", the median of {args.rounds} alternating rounds per row" if args.rounds > 1 else ""
    print(f"\nconcurrency {args.concurrency}, {args.duration} s per run{rounds}, wrk -t{args.wrk_threads}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {machine_description()}\n")
    print("| endpoint (model) | mode | requests/s | items/s | p50 ms | p95 ms | p99 ms | failed | mean batch "
          f"| model busy | share of ceiling | share of batch-{SERVED_BATCH} rate |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    medians = {key: _median(rows) for key, rows in runs.items()}
    for row in medians.values():
        print(_format(row))
    print()
    for scenario in chosen:
        for suffix in trees:
            if (scenario.name, OFF + suffix) in medians:
                on, off = (medians[scenario.name, mode + suffix] for mode in (ON, OFF))
                print(f"{scenario.name}{suffix}: batching on / off = {on.requests_per_s / off.requests_per_s:.1f}x")
        if args.runtimes:
            print(runtime_comparison(scenario.name, runs))
    results = [asdict(row) | {"items_per_s": row.items_per_s} for rows in runs.values() for row in rows]
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(workspace, ignore_errors=True)


def runtime_comparison(scenario: str, runs: dict[tuple[str, str], list[Row]]) -> str:
    """The default runtime (auto) over float32, round by round: served items/s with each side's p99, and
    the in-process rate at the ceiling's batch size; the median ratio and its spread."""
    def line(what: str, auto: list[Row], float32: list[Row], p99: bool) -> str:
        ratios = [a.items_per_s / f.items_per_s for a, f in zip(auto, float32, strict=True)]
        rounds = " ".join(f"{r:.2f}" for r in ratios)
        latency = ("; p99 ms auto / float32 per round: "
                   + " ".join(f"{a.p99_ms:.0f}/{f.p99_ms:.0f}" for a, f in zip(auto, float32, strict=True))
                   if p99 else "")
        return (f"{scenario}, {what}: auto / float32 = {statistics.median(ratios):.2f}x median "
                f"({min(ratios):.2f}-{max(ratios):.2f}; rounds {rounds}){latency}")

    def ceilings(runtime: str | None) -> list[Row]:
        return next(rows for (name, mode), rows in runs.items()
                    if name == scenario and mode.startswith("in-process") and rows[0].runtime == runtime
                    and mode.endswith(f"batch {CEILING_BATCH}, {runtime}"))

    auto = runs[scenario, ON][0].runtime
    return "\n".join([
        line("served", runs[scenario, ON], runs[scenario, FLOAT32], p99=True),
        line(f"in-process at batch {CEILING_BATCH} ({auto} / tensorflow)", ceilings(auto), ceilings("tensorflow"),
             p99=False),
    ])


def rollout_modes(artifacts: Path, model: str, workspace: Path) -> list[tuple[str, dict[str, str]]]:
    """Service configurations that cost what a rollout costs: shadow copies of 10% and of all requests to
    the model's previous version (written with the user's command), and the payload log keeping every request."""
    versions = sorted(int(p.name) for p in (artifacts / model).iterdir() if p.name.isdigit())
    modes = []
    for share in (0.1, 1.0):
        folder = workspace / f"shadow-{share}"
        # Every gate off: a rollback during the run would end the cost being measured.
        gates = [f"--gate={gate}=off" for gate in ("min_agreement", "max_error_rate", "max_p99_ratio",
                                                   "max_drift_vs_stable", "max_drift_vs_reference")]
        subprocess.run([sys.executable, "-m", "service.rollout", model, "--artifacts-dir", str(artifacts),
                        "--rollout-dir", str(folder), "--stable", str(versions[-1]), "--candidate",
                        str(versions[-2]), "--mode", "shadow", "--weight", str(share), *gates],
                       check=True, capture_output=True, cwd=REPO)
        modes.append((f"batching on, shadow {share:.0%}", {"SERVICE_ROLLOUT_DIR": str(folder)}))
    modes.append(("batching on, payload log 100%", {"SERVICE_PAYLOAD_LOG_DIR": str(workspace / "payloads")}))
    return modes


def shadow_outcomes(base_url: str, model: str) -> str:
    """What became of the run's shadow copies, and the rollout's state, from the service's own figures."""
    with urllib.request.urlopen(f"{base_url}/models/{model}/rollout", timeout=10) as response:
        rollout = json.load(response)
    shadow = rollout["shadow"] or {}
    return (f"state {rollout['state']}, copies {shadow.get('copies')}, dropped {shadow.get('dropped')}, "
            f"agreement {shadow.get('agreement')}")


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """'intra2:TF_NUM_INTRAOP_THREADS=2,SERVICE_MAX_DELAY_MS=2' -> the label and the variables."""
    label, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if "=" in item)
    if not label or not env:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL:VAR=VALUE[,VAR=VALUE...]")
    return label, env


def _median(rows: list[Row]) -> Row:
    """The round with the median share of its ceiling (in-process rows: the median rate), the lower
    middle one of an even count: one real run, not a blend of several."""
    def key(row: Row) -> float:
        return row.requests_per_s if row.share is None else row.share

    return sorted(rows, key=key)[(len(rows) - 1) // 2]


ON, OFF = "batching on (defaults)", "batching off (max batch 1)"
FLOAT32 = "batching on, SERVICE_RUNTIME=tensorflow"


def _format(row: Row) -> str:
    """A table row, with its shares of the in-process rates of its round (none for in-process rows)."""
    def number(value: float | None, form: str = ".1f") -> str:
        return "" if value is None else format(value, form)

    in_process = row.mode.startswith("in-process")
    requests = "" if in_process else f"{row.requests_per_s:.0f}"
    batch_share = None if row.batch_rate is None else row.items_per_s / row.batch_rate
    return (f"| {row.scenario} | {row.mode} | {requests} | {row.items_per_s:.0f} | {number(row.p50_ms)} | "
            f"{number(row.p95_ms)} | {number(row.p99_ms)} | {row.failed} | {number(row.mean_batch)} | "
            f"{number(row.model_busy, '.2f')} | {number(row.share, '.2f')} | {number(batch_share, '.2f')} |")


if __name__ == "__main__":
    main()
