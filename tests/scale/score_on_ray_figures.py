"""The Ray figures of docs/scoring.md: `python -m service.score --ray` on the two-node loopback cluster
against the local run, for the bench's three jobs on the committed models.

    python -m tests.scale.score_on_ray_figures [--rows 5000] [--only tweets]

For each job (service.score.bench's: GOP tweets, IMDB test reviews, CIFAR-10 test JPEGs), one local
run and one run on a two-node cluster (head 127.0.0.2, worker 127.0.0.3, 2 CPUs each, one actor per
node, ranges of 1,024 rows), each a whole command from Python's start to its exit, both to Parquet; then the two outputs
compared row for row. Both "nodes" are on this 2-core machine, so the figures show that the
job is right on Ray and what Ray costs, not a speed-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from service.score.bench import DATASETS, ScoringJob, jobs
from tests.scale.cluster import HEAD_IP, REPO, Cluster, two_node_cluster


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return seconds, result.stderr.strip().splitlines()[-1]


def _compare(job: ScoringJob, work: Path, cluster: Cluster, env: dict[str, str]) -> str:
    """One job locally and on the cluster, both to Parquet: a table row of their speeds and differences."""
    # Ranges of 1,024 rows: enough of them for both nodes' actors to take a share.
    base = [sys.executable, "-m", "service.score", job.model, *job.arguments, "--format", "parquet",
            "--part-rows", "1024"]
    local_s, _ = _run([*base, "--output", str(work / f"{job.name}-local.parquet")], env)
    ray_s, last_line = _run([*base, "--output", str(work / f"{job.name}-ray.parquet"), "--ray", cluster.address,
                             "--ray-node-ip", HEAD_IP], cluster.env | env)
    local = pq.read_table(work / f"{job.name}-local.parquet").to_pylist()
    on_ray = sorted(pq.read_table(work / f"{job.name}-ray.parquet").to_pylist(), key=lambda row: row["row"])
    names = [name for name in local[0] if name.startswith("probability")]
    same = len(local) == len(on_ray) and all(
        [mine[k] for k in mine if k not in names] == [theirs[k] for k in theirs if k not in names]
        for mine, theirs in zip(on_ray, local, strict=True))
    worst = max((abs(mine[k] - theirs[k]) for mine, theirs in zip(on_ray, local, strict=True)
                 for k in names if theirs[k] is not None), default=0.0)
    per_node = last_line.rsplit("rows scored per node: ", 1)[-1]
    return (f"| {job.name} | {job.model} | {len(local):,} | {len(local) / local_s:,.0f} ({local_s:.1f} s) | "
            f"{len(on_ray) / ray_s:,.0f} ({ray_s:.1f} s) | {per_node} | {'yes' if same else 'NO'} | {worst:.1e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000, help="reviews and images per job (tweets: all 13,871)")
    parser.add_argument("--only", help="run only the jobs whose name (tweets, reviews, images) contains this")
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    table = []
    # Ray's socket paths under its temp folder must fit in 107 bytes: a short one in /tmp.
    ray_temp = Path(tempfile.mkdtemp(prefix="rsf-", dir="/tmp"))
    try:
        with tempfile.TemporaryDirectory(prefix="rs-") as temp, two_node_cluster(ray_temp, Path(temp)) as cluster:
            work = Path(temp)
            for job in jobs(DATASETS, args.rows):
                if not args.only or args.only in job.name:
                    table.append(_compare(job, work, cluster, env))
                    print(table[-1], flush=True)
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| job | model | rows | local rows/s (whole command) | Ray rows/s (whole command) | rows scored per node "
          "| same rows, labels, errors | largest probability difference |")
    print("|---|---|---:|---:|---:|---|---|---:|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
