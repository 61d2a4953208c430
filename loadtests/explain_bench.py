"""What explanations cost: explained requests per second, and plain requests' latency beside them.

    python -m loadtests.explain_bench [--rounds 3] [--duration 15] [--only tweets]

On the committed models (a review, a tweet, a CIFAR-10 JPEG per request, real test inputs), one
service (`python -m service`, default settings) is driven in rounds; each round, per model:
  - explained: every request asks for an explanation, at `--explain-concurrency` (4: an explained
    review is up to 49 model rows, so 32 of them at once would pass the queue limit of 256);
  - plain: no request asks, at `--concurrency` (32);
  - mixed: the same load, every tenth request (by a seeded draw) asking for one; plain requests'
    p99 here against the plain run's shows what explanations cost the others (the batcher takes
    explanation rows after plain ones: docs/explanations.md).
The table gives each row's median round. The client is Python (asyncio + httpx2) rather than wrk,
because the mixed run needs each request's latency by kind; it shares the two cores with the service,
so compare rows of one run, as ratios, not with loadtests.bench's wrk figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx2 as httpx

from contract.speed import machine_description
from loadtests.bench import DATASETS, INPUTS, cifar_jpegs, imdb_reviews, tweets
from loadtests.server import REPO, running_service

EXPLAINED_SHARE = 0.1


@dataclass(frozen=True)
class Model:
    name: str
    kind: str  # "text" or "image"
    inputs: list[str] | list[bytes]


@dataclass
class Row:
    model: str
    mode: str  # explained, plain, mixed
    concurrency: int
    requests_per_s: float
    explained_per_s: float
    plain_p50_ms: float | None
    plain_p99_ms: float | None
    explained_p50_ms: float | None
    explained_p99_ms: float | None
    failed: dict[str, int]


def models(datasets: Path, only: str | None) -> list[Model]:
    found = [
        Model("sentiment-imdb", "text", imdb_reviews(datasets / "aclImdb_v1_labelled.tar.gz", INPUTS)),
        Model("sentiment-tweets", "text", tweets(datasets / "gop-debate" / "Sentiment.csv", INPUTS)),
        Model("cifar10-cnn", "image", cifar_jpegs(datasets / "cifar10-jpeg.zip", INPUTS)),
    ]
    return [m for m in found if only is None or only in m.name]


async def drive(base_url: str, model: Model, concurrency: int, share: float, duration_s: float, seed: int) -> Row:
    """`concurrency` clients, each sending its next request as soon as the last is answered, for `duration_s`."""
    draw = random.Random(seed)
    latencies: dict[bool, list[float]] = {True: [], False: []}
    failed: dict[str, int] = {}
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
        stop = time.monotonic() + duration_s

        async def client() -> None:
            nonlocal sent
            while time.monotonic() < stop:
                item = model.inputs[sent % len(model.inputs)]
                sent += 1
                explain = draw.random() < share
                started = time.perf_counter()
                try:
                    if model.kind == "text":
                        response = await http.post("/sentiment", json={"text": item, "model": model.name,
                                                                       "explain": explain})
                    else:
                        response = await http.post(f"/classify-image?model={model.name}&explain={str(explain).lower()}",
                                                   content=item, headers={"Content-Type": "image/jpeg"})
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                if outcome == "200":
                    latencies[explain].append(time.perf_counter() - started)
                else:
                    kind = f"{'explained' if explain else 'plain'} {outcome}"
                    failed[kind] = failed.get(kind, 0) + 1

        begun = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - begun
    mode = "explained" if share == 1 else "plain" if share == 0 else "mixed"
    answered = len(latencies[True]) + len(latencies[False])
    return Row(model.name, mode, concurrency, answered / elapsed, len(latencies[True]) / elapsed,
               *_percentiles(latencies[False]), *_percentiles(latencies[True]), failed)


def _percentiles(seconds: list[float]) -> tuple[float | None, float | None]:
    if len(seconds) < 2:
        return None, None
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return round(cuts[49] * 1000, 1), round(cuts[98] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts", help="the models to serve")
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="the real inputs (../shared/datasets)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15, help="seconds of load per run")
    parser.add_argument("--concurrency", type=int, default=32, help="clients of the plain and mixed runs")
    parser.add_argument("--explain-concurrency", type=int, default=4, help="clients of the explained run")
    parser.add_argument("--only", help="only the models whose name contains this")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results", help="where the JSON results go")
    args = parser.parse_args()

    chosen = models(args.datasets, args.only)
    rounds: list[list[Row]] = []
    with tempfile.TemporaryDirectory() as workdir, \
            running_service(args.artifacts, Path(workdir) / "service.log") as service:
        for number in range(args.rounds):
            rows = []
            for model in chosen:
                # Plain and mixed back to back, so that their p99s meet the same machine.
                for share, concurrency in ((0.0, args.concurrency), (EXPLAINED_SHARE, args.concurrency),
                                           (1.0, args.explain_concurrency)):
                    rows.append(asyncio.run(drive(service.base_url, model, concurrency, share, args.duration,
                                                  seed=number)))
            rounds.append(rows)
            print(f"round {number + 1}: " + "; ".join(_brief(row) for row in rows), flush=True)
    medians = [_median([rows[i] for rows in rounds]) for i in range(len(rounds[0]))]
    load = os.getloadavg()
    print(f"\n{machine_description()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.rounds} rounds of {args.duration:g} s; median round per row")
    print(_table(medians, rounds))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "explain-bench.json"
    path.write_text(json.dumps({"machine": machine_description(), "load_average": load, "rounds": [
        [asdict(row) for row in rows] for rows in rounds]}, indent=2))
    print(f"(written to {path})")


def _median(rows: list[Row]) -> Row:
    """The round whose headline figure is the median: explained/s for explained runs, plain p99 otherwise."""
    def key(row: Row) -> float:
        value = row.explained_per_s if row.mode == "explained" else row.plain_p99_ms
        return value if value is not None else float("inf")
    return sorted(rows, key=key)[len(rows) // 2]


def _brief(row: Row) -> str:
    return f"{row.model} {row.mode} {row.requests_per_s:.0f}/s"


def _table(medians: list[Row], rounds: list[list[Row]]) -> str:
    def number(value: float | None, form: str = ".1f") -> str:
        return "-" if value is None else format(value, form)

    lines = ["| model | run | clients | requests/s | explained/s | plain p50 / p99 ms | explained p50 / p99 ms "
             "| plain p99 vs plain run (rounds) | failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for index, row in enumerate(medians):
        ratios = ""
        if row.mode == "mixed":
            pairs = [(r[index].plain_p99_ms, r[index - 1].plain_p99_ms) for r in rounds]  # mixed, then plain
            per_round = [mixed / plain for mixed, plain in pairs if mixed is not None and plain]
            if per_round:
                ratios = f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"
        lines.append(
            f"| {row.model} | {row.mode} | {row.concurrency} | {row.requests_per_s:.1f} | "
            f"{row.explained_per_s:.1f} | {number(row.plain_p50_ms)} / {number(row.plain_p99_ms)} | "
            f"{number(row.explained_p50_ms)} / {number(row.explained_p99_ms)} | {ratios} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(row.failed.items())) or '0'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
