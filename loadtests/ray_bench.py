"""Ray Serve against the plain service, on the same wrk load, in one run.

    python -m loadtests.ray_bench [--rounds 3] [--duration 20] [--concurrency 32] [--proxies haproxy,classic]
                                  [--variant "NAME:FLAGS"]

Both serve the committed models with the default settings: `python -m service` (what `make serve`
runs) and `python -m service.ray_serve` (what `make serve-ray` runs: a local Ray node on
127.0.0.2, one replica given both CPUs), through each ingress named by `--proxies` (HAProxy, the
default, and optionally Ray's classic Python proxy), and once more per `--variant` (HAProxy, with
further `python -m service.ray_serve` flags: `--variant "Ray's access log:--ray-access-log"`). The
Ray runs of a round go in reverse order every other round. wrk sends, at the given concurrency, one
request per input of each payload:
  - tweets: one GOP debate tweet per request to /sentiment (model sentiment-tweets);
  - jpegs: one CIFAR-10 test JPEG per request to /classify-image (model cifar10-cnn).
Each round starts every server once, in the same order, and runs every payload on it, so that
a change in the machine's load hits all of them; per payload, the table has every run, and the
summary the Ray path's requests/s and p99 as ratios of the direct service's in the same round
(median, and the lowest and highest round).

Where the time goes: during each measured run, the CPU time of every process the server started
(by process name: the service, or HAProxy, the replica and Ray's own processes) is read from
/proc, per request, beside the machine's idle share; on a machine the load saturates, requests/s
is the cores over the CPU time a request costs all processes together. After each HAProxy run,
HAProxy's own statistics for the replicas' backend (average queue, connect, response and total
time of its last 1,024 requests) say how much of a request's time HAProxy saw outside the replica.
Needs wrk and the ray extra.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtests.bench import DATASETS, INPUTS, Row, Scenario, cifar_jpegs, run_wrk, tweets
from loadtests.server import REPO, free_ports, running_service, supervised

DIRECT = "python -m service"
PROXY_NAMES = {"haproxy": "Ray Serve, HAProxy", "classic": "Ray Serve, classic proxy"}


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class RayServer:
    url: str
    session: int  # the session every process of its local Ray node is in
    stats_url: str | None  # HAProxy's statistics page (CSV), when HAProxy is the ingress


def session_cpu_s(session: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process of `session`, added up by process name."""
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if not stat:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()  # from the state on: field 3 of proc(5) is fields[0]
        if int(fields[3]) == session:
            used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    return used


def machine_idle_ticks() -> tuple[int, int]:
    """(idle, total) clock ticks of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)  # idle and iowait


@contextmanager
def running_ray_serve(artifacts: Path, log_path: Path, proxy: str, start_timeout_s: float = 300,
                      flags: tuple[str, ...] = ()) -> Iterator[RayServer]:
    """`python -m service.ray_serve --proxy PROXY [FLAGS]` with one replica holding both CPUs, until stopped."""
    port, stats_port = free_ports(2)
    env = os.environ | {"SERVICE_ARTIFACTS_DIR": str(artifacts), "RAY_USAGE_STATS_ENABLED": "0",
                        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port)}
    command = [sys.executable, "-m", "service.ray_serve", "--port", str(port), "--proxy", proxy, "--num-cpus", "2",
               "--min-replicas", "1", "--max-replicas", "1", "--cpus-per-replica", "2",
               "--start-timeout-s", str(start_timeout_s), *flags]
    url = f"http://127.0.0.1:{port}"
    # service.ray_serve waits for the deployment itself (--start-timeout-s); the margin covers Ray's start.
    with supervised(f"Ray Serve ({proxy})", command, cwd=REPO, env=env, log_path=log_path,
                    ready_url=f"{url}/readyz", start_timeout_s=start_timeout_s + 30, stop_timeout_s=90) as process:
        yield RayServer(url, process.pid, f"http://127.0.0.1:{stats_port}/stats;csv" if proxy == "haproxy" else None)


def haproxy_backend_times(stats_url: str) -> dict[str, float]:
    """HAProxy's averages (ms) over the last 1,024 requests of the replicas' backend."""
    with urllib.request.urlopen(stats_url, timeout=5) as response:
        text = response.read().decode().lstrip("# ")
    for row in csv.DictReader(io.StringIO(text)):
        if row["svname"] == "BACKEND" and row["pxname"].startswith("http-"):
            return {f"{name} ms": float(row[name] or 0) for name in ("qtime", "ctime", "rtime", "ttime")}
    return {}


def payloads(datasets: Path) -> list[Scenario]:
    texts = tweets(datasets / "gop-debate" / "Sentiment.csv", INPUTS)
    text_bodies = [json.dumps({"text": text, "model": "sentiment-tweets"}).encode() for text in texts]
    jpegs = cifar_jpegs(datasets / "cifar10-jpeg.zip", INPUTS)
    return [
        Scenario("tweets", "sentiment-tweets", "/sentiment", "application/json", text_bodies, texts),
        Scenario("jpegs", "cifar10-cnn", "/classify-image?model=cifar10-cnn", "image/jpeg", jpegs, None),
    ]


def ratios(rows: list[Row], scenario: str, mode: str) -> dict[str, float]:
    """Per round, `mode`'s requests/s and p99 over the direct service's; median, lowest, highest."""
    direct = [r for r in rows if r.scenario == scenario and r.mode == DIRECT]
    other = [r for r in rows if r.scenario == scenario and r.mode == mode]
    throughput = [o.requests_per_s / d.requests_per_s for d, o in zip(direct, other, strict=True)]
    p99 = [(o.p99_ms or 0) / (d.p99_ms or 1) for d, o in zip(direct, other, strict=True)]
    return {"throughput": statistics.median(throughput), "throughput low": min(throughput),
            "throughput high": max(throughput), "p99": statistics.median(p99), "p99 low": min(p99),
            "p99 high": max(p99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk per run")
    parser.add_argument("--warm-up", type=int, default=5, help="seconds of wrk before each measured run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proxies", default="haproxy", help="Ray Serve ingresses to compare, comma-separated: "
                        "haproxy (make serve-ray's default), classic")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:FLAGS",
                        help="one more Ray Serve run per round, through HAProxy, with these further flags of "
                        "python -m service.ray_serve (repeatable)")
    parser.add_argument("--only", choices=("tweets", "jpegs"), default=None, help="one payload only")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "ray-bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    proxies = [name.strip() for name in args.proxies.split(",") if name.strip()]
    if not proxies or set(proxies) - set(PROXY_NAMES):
        parser.error(f"--proxies: one or more of {', '.join(PROXY_NAMES)}")
    if any(":" not in variant for variant in args.variant):
        parser.error("--variant: NAME:FLAGS")
    # Each Ray run of a round: (its name in the tables, the ingress, further flags).
    ray_runs = [(PROXY_NAMES[proxy], proxy, ()) for proxy in proxies] + [
        (f"{PROXY_NAMES['haproxy']}, {name}", "haproxy", tuple(flags.split()))
        for name, _, flags in (variant.partition(":") for variant in args.variant)]
    args.out.mkdir(parents=True, exist_ok=True)
    scenarios = [s for s in payloads(args.datasets) if args.only in (None, s.name)]

    rows: list[Row] = []
    haproxy_times: list[dict[str, object]] = []
    cpu_costs: list[dict[str, object]] = []

    def measure(url: str, mode: str, session: int, stats_url: str | None = None) -> None:
        for scenario in scenarios:
            with tempfile.TemporaryDirectory() as tmp:
                run_wrk(url + scenario.path, scenario, Path(tmp), args.concurrency, args.warm_up, 1)
                cpu_before, idle_before = session_cpu_s(session), machine_idle_ticks()
                row = run_wrk(url + scenario.path, scenario, Path(tmp), args.concurrency, args.duration, 1)
                cpu_after, idle = session_cpu_s(session), machine_idle_ticks()
            cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in cpu_after.items()}
            row.mode = mode
            rows.append(row)
            requests = row.requests_per_s * (row.load_s or args.duration)
            per_request = {name: round(1000 * seconds / requests, 3)
                           for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]) if seconds > 0}
            idle_share = (idle[0] - idle_before[0]) / max(1, idle[1] - idle_before[1])
            cpu_costs.append({"scenario": scenario.name, "mode": mode, "cpu ms per request": per_request,
                              "total cpu ms per request": round(sum(per_request.values()), 3),
                              "machine idle": round(idle_share, 3)})
            print(f"{scenario.name}, {mode}: {row.requests_per_s:.0f} requests/s, p99 {row.p99_ms:.1f} ms, "
                  f"failed {row.failed}; CPU ms per request {sum(per_request.values()):.3f} {per_request}, "
                  f"machine idle {idle_share:.0%}", flush=True)
            if stats_url is not None:
                times = haproxy_backend_times(stats_url)
                haproxy_times.append({"scenario": scenario.name, **times})
                print(f"  HAProxy, replicas' backend: {times}", flush=True)

    for round_ in range(args.rounds):
        with running_service(args.artifacts, args.out / f"service-{round_}.log") as service:
            measure(service.base_url, DIRECT, service.process.pid)
        for number, (mode, proxy, flags) in enumerate(ray_runs if round_ % 2 == 0 else ray_runs[::-1]):
            log_path = args.out / f"ray-serve-{proxy}-{round_}-{number}.log"
            with running_ray_serve(args.artifacts, log_path, proxy, flags=flags) as ray:
                measure(ray.url, mode, ray.session, ray.stats_url)

    load = os.getloadavg()
    print(f"\nwrk -t1 -c{args.concurrency}, {args.duration} s per run after {args.warm_up} s of warm-up, one input "
          f"per request, {args.rounds} rounds; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n")
    print("| payload | server | requests/s | p50 ms | p95 ms | p99 ms | failed |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.scenario} | {row.mode} | {row.requests_per_s:.0f} | {row.p50_ms:.1f} | {row.p95_ms:.1f} | "
              f"{row.p99_ms:.1f} | {row.failed} |")
    summary = {f"{s.name}, {mode}": ratios(rows, s.name, mode) for s in scenarios for mode, _, _ in ray_runs}
    print("\nRay Serve / python -m service, per round (median, lowest-highest):")
    for name, figures in summary.items():
        print(f"  {name}: throughput {figures['throughput']:.2f}x ({figures['throughput low']:.2f}-"
              f"{figures['throughput high']:.2f}), p99 {figures['p99']:.2f}x ({figures['p99 low']:.2f}-"
              f"{figures['p99 high']:.2f})")
    (args.out / "ray-bench.json").write_text(json.dumps(
        {"rows": [asdict(r) for r in rows], "ratios": summary, "cpu": cpu_costs, "haproxy_backend": haproxy_times,
         "load_average": load}, indent=2))


if __name__ == "__main__":
    main()
