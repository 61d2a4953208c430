"""Soak test: steady locust load for a while, with the service's memory sampled all along.

    python -m loadtests.soak --host http://127.0.0.1:8080 --users 10 --minutes 10
    python -m loadtests.soak --host http://127.0.0.1:8000 --pid 12345     # `python -m service` directly

It runs loadtests/locustfile.py headless (its pass/fail thresholds apply) and, every --every
seconds, records the resident memory of each replica: the compose stack's service containers
(`docker stats`, containers whose name matches --containers) or the processes given by --pid.
At the end it prints, per replica, the memory after warm-up (the first --warmup seconds of load)
and at the end, and exits non-zero when one grew by more than --max-growth-mib after warm-up,
or when locust failed.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def _docker() -> str:
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def container_memory(pattern: str) -> dict[str, float]:
    """MiB in use by each running container whose name matches `pattern`."""
    output = subprocess.run([_docker(), "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                            capture_output=True, text=True, check=True).stdout
    found = {}
    for line in output.splitlines():
        name, usage = line.split(" ", 1)
        match = re.match(r"([\d.]+)\s*([A-Za-z]+)", usage)
        if re.search(pattern, name) and match:
            found[name] = float(match.group(1)) * UNITS[match.group(2)] / 1024**2
    return found


def process_memory(pids: list[int]) -> dict[str, float]:
    """Resident MiB of each process (VmRSS)."""
    found = {}
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            found[f"pid {pid}"] = int(match.group(1)) / 1024
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="http://127.0.0.1:8080")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=60, help="seconds of load before the baseline sample")
    parser.add_argument("--every", type=float, default=15, help="seconds between memory samples")
    parser.add_argument("--containers", default=r"service-\d", help="regex of the replica containers' names")
    parser.add_argument("--pid", type=int, action="append", default=[], help="sample this process instead")
    parser.add_argument("--max-growth-mib", type=float, default=50)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "soak")
    parser.add_argument("locust_args", nargs="*", help="more locust options, after --")
    args = parser.parse_args()

    def sample() -> dict[str, float]:
        return process_memory(args.pid) if args.pid else container_memory(args.containers)

    args.out.mkdir(parents=True, exist_ok=True)
    before = sample()
    if not before:
        parser.error("nothing to sample: no container matches --containers, and no --pid given")
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless",
         "--host", args.host, "-u", str(args.users), "-r", str(args.users), "-t", f"{int(args.minutes * 60)}s",
         "--only-summary", "--csv", str(args.out / "soak"), "--html", str(args.out / "soak.html"),
         *args.locust_args],
        cwd=REPO,
    )
    started = time.monotonic()
    samples: list[tuple[float, dict[str, float]]] = [(0.0, before)]
    while locust.poll() is None:
        time.sleep(args.every)
        if locust.poll() is None:
            samples.append((time.monotonic() - started, sample()))
    with open(args.out / "memory.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "replica", "mib"])
        for seconds, values in samples:
            for name, mib in sorted(values.items()):
                writer.writerow([f"{seconds:.0f}", name, f"{mib:.1f}"])

    warm = next((values for seconds, values in samples if seconds >= args.warmup), samples[-1][1])
    end = samples[-1][1]
    print(f"\nmemory (MiB) over {args.minutes:g} min at {args.users} users; baseline after {args.warmup:.0f} s "
          f"of load; samples in {args.out / 'memory.csv'}\n")
    print("| replica | before load | after warm-up | end | max | growth after warm-up |")
    print("|---|---:|---:|---:|---:|---:|")
    grew = False
    for name in sorted(before):
        peak = max(values.get(name, 0.0) for _, values in samples)
        growth = end.get(name, 0.0) - warm.get(name, 0.0)
        grew |= growth > args.max_growth_mib
        print(f"| {name} | {before[name]:.0f} | {warm.get(name, 0):.0f} | {end.get(name, 0):.0f} | {peak:.0f} | "
              f"{growth:+.0f} |")
    if grew:
        print(f"FAIL: a replica grew by more than {args.max_growth_mib} MiB after warm-up")
    sys.exit(1 if grew or locust.returncode else 0)


if __name__ == "__main__":
    main()
