"""Ray Serve's proxy against the plain service, on the same wrk load, in one run.

    python -m loadtests.ray_bench [--rounds 2] [--duration 20] [--concurrency 32]

Both serve the committed models with the default settings: `python -m service` (what `make serve`
runs) and `python -m service.ray_serve` (what `make serve-ray` runs: a local Ray node on
127.0.0.2, one replica given both CPUs, requests through Ray Serve's HTTP proxy). wrk sends one GOP
debate tweet per request to /sentiment (model sentiment-tweets), at the given concurrency. The
two are run alternately, `--rounds` times each, so that a change in the machine's load hits both;
the table has every run and the ratio of the medians. Needs wrk and the ray extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from loadtests.bench import DATASETS, INPUTS, Row, Scenario, run_wrk, tweets
from loadtests.server import REPO, free_port, running_service, supervised

MODEL = "sentiment-tweets"


@contextmanager
def running_ray_serve(artifacts: Path, log_path: Path, start_timeout_s: float = 300) -> Iterator[str]:
    """`python -m service.ray_serve` with one replica holding both CPUs; its URL until stopped."""
    port = free_port()
    env = os.environ | {"SERVICE_ARTIFACTS_DIR": str(artifacts), "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "service.ray_serve", "--port", str(port), "--num-cpus", "2",
               "--min-replicas", "1", "--max-replicas", "1", "--cpus-per-replica", "2",
               "--start-timeout-s", str(start_timeout_s)]
    url = f"http://127.0.0.1:{port}"
    # service.ray_serve waits for the deployment itself (--start-timeout-s); the margin covers Ray's start.
    with supervised("Ray Serve", command, cwd=REPO, env=env, log_path=log_path, ready_url=f"{url}/readyz",
                    start_timeout_s=start_timeout_s + 30, stop_timeout_s=90):
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk per run")
    parser.add_argument("--warm-up", type=int, default=5, help="seconds of wrk before each measured run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "ray-bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    args.out.mkdir(parents=True, exist_ok=True)
    texts = tweets(args.datasets / "gop-debate" / "Sentiment.csv", INPUTS)
    bodies = [json.dumps({"text": text, "model": MODEL}).encode() for text in texts]
    scenario = Scenario(f"sentiment ({MODEL})", MODEL, "/sentiment", "application/json", bodies, texts)

    rows: list[Row] = []

    def measure(url: str, mode: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            run_wrk(url + scenario.path, scenario, Path(tmp), args.concurrency, args.warm_up, 1)
            row = run_wrk(url + scenario.path, scenario, Path(tmp), args.concurrency, args.duration, 1)
        row.mode = mode
        rows.append(row)
        print(f"{mode}: {row.requests_per_s:.0f} requests/s, p99 {row.p99_ms:.1f} ms, failed {row.failed}",
              flush=True)

    for round_ in range(args.rounds):
        with running_service(args.artifacts, args.out / f"service-{round_}.log") as service:
            measure(service.base_url, "python -m service (make serve)")
        with running_ray_serve(args.artifacts, args.out / f"ray-serve-{round_}.log") as url:
            measure(url, "Ray Serve proxy, 1 replica (make serve-ray)")

    load = os.getloadavg()
    print(f"\nwrk -t1 -c{args.concurrency}, {args.duration} s per run after {args.warm_up} s of warm-up, "
          f"one tweet per request; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    print("| server | requests/s | p50 ms | p95 ms | p99 ms | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.mode} | {row.requests_per_s:.0f} | {row.p50_ms:.1f} | {row.p95_ms:.1f} | {row.p99_ms:.1f} | "
              f"{row.failed} |")
    plain = [r for r in rows if r.mode.startswith("python")]
    ray = [r for r in rows if r.mode.startswith("Ray")]
    throughput = statistics.median(r.requests_per_s for r in ray) / statistics.median(r.requests_per_s for r in plain)
    p99 = statistics.median(r.p99_ms or 0 for r in ray) / statistics.median(r.p99_ms or 0 for r in plain)
    print(f"\nRay Serve / python -m service (medians): throughput {throughput:.2f}x, p99 {p99:.2f}x")
    (args.out / "ray-bench.json").write_text(json.dumps(
        {"rows": [asdict(r) for r in rows], "throughput_ratio": throughput, "p99_ratio": p99,
         "load_average": load}, indent=2))


if __name__ == "__main__":
    main()
