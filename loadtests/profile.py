"""Where the service's CPU goes per request: py-spy samples a running service under wrk load.

    python -m loadtests.profile [--only tweets] [--compare-tree ../other-checkout] [--seconds 15]

For each chosen scenario of loadtests.bench it starts the real service (`python -m service`,
batching on, defaults), drives it with wrk at concurrency 32, records it with py-spy
(`pip install py-spy`; it reads the process from outside and changes nothing), and prints
the functions with the largest share of the samples, per thread: the event loop's thread,
and the worker threads (model calls, decoding). Shares are of all samples of that thread,
listed by the samples at the top of the stack ("self"), with the share where the function is
anywhere on the stack ("inclusive").
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtests.bench import DATASETS, run_wrk, scenarios
from loadtests.server import REPO, running_service

EVENT_LOOP = "event loop"
WORKERS = "worker threads"


def _frame(text: str) -> str:
    """'function (path/to/file.py:12)' -> 'function file.py'."""
    name, _, where = text.partition(" (")
    return f"{name} {where.split(':')[0].rsplit('/', 1)[-1]}"


def summarise(raw: Path) -> dict[str, tuple[int, collections.Counter[str], collections.Counter[str]]]:
    """Samples, inclusive and self counts per function, for the event loop's thread and the others."""
    result: dict[str, tuple[int, collections.Counter[str], collections.Counter[str]]] = {}
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = [_frame(f) for f in stack.split(";")]
        # Worker threads start in threading's bootstrap; the rest is the main thread's event loop
        # (py-spy shows some of its coroutine stacks without the frames below them).
        thread = WORKERS if frames[0].startswith("Thread._bootstrap") else EVENT_LOOP
        total, inclusive, own = result.setdefault(thread, (0, collections.Counter(), collections.Counter()))
        for name in set(frames):
            inclusive[name] += int(count)
        own[frames[-1]] += int(count)
        result[thread] = (total + int(count), inclusive, own)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--only", default="tweets", help="the scenarios whose name contains this")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of samples (wrk runs 5 s longer)")
    parser.add_argument("--top", type=int, default=15, help="functions listed per thread")
    parser.add_argument("--compare-tree", type=Path, help="profile another checkout's service too")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "profile")
    args = parser.parse_args()
    # py-spy comes with the load extra, so it sits beside this Python when no other is on PATH.
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if shutil.which("wrk") is None or py_spy is None:
        parser.error("needs wrk (apt-get install wrk) and py-spy (make deps)")
    args.out.mkdir(parents=True, exist_ok=True)
    trees = {"this tree": REPO} | ({args.compare_tree.name: args.compare_tree.resolve()} if args.compare_tree else {})
    for scenario in (s for s in scenarios(args.artifacts, args.datasets) if args.only in s.name):
        for label, tree in trees.items():
            raw = args.out / f"{scenario.name.replace(' ', '_')}-{label.replace(' ', '_')}.txt"
            with tempfile.TemporaryDirectory() as tmp, running_service(
                args.artifacts, args.out / "service.log", 120, tree, log_level="warning"
            ) as service:
                spy = subprocess.Popen([py_spy, "record", "-p", str(service.process.pid), "-d", str(args.seconds),
                                        "-r", "200", "--format", "raw", "-o", str(raw), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                row = run_wrk(service.base_url + scenario.path, scenario, Path(tmp), 32, args.seconds + 5, 1)
                spy.wait(timeout=60)
            print(f"\n## {scenario.name}, {label}: {row.requests_per_s:.0f} requests/s, p99 {row.p99_ms:.0f} ms")
            for thread, (total, inclusive, own) in summarise(raw).items():
                print(f"\n{thread} ({total} samples): self | inclusive | function, by self")
                for name, count in own.most_common(args.top):
                    print(f"  {count / total:6.1%} | {inclusive[name] / total:6.1%} | {name}")


if __name__ == "__main__":
    main()
