"""A real rollout on the committed models: an older version as candidate, in shadow, then in canary.

    python -m loadtests.rollout [--model sentiment-imdb] [--candidate 1] [--requests 600] [--weight 0.2]

It starts the service on the committed models with a rollout folder of its own, and does what a
user would (docs/rollouts.md): `python -m service.rollout` puts the candidate in shadow for every
request, real IMDB test reviews are sent by a few concurrent clients, and the rollout's figures
and gates are printed as `GET /models/{name}/rollout` reports them; then the same for a canary
taking the `--weight` share of callers (each client request has a routing key of its own). The
gates are the policy's defaults, so a candidate that fails one is rolled back on the way, as it
would be in production; the canary step is then the person's explicit decision to try it anyway.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx

from loadtests.payloads import reviews
from loadtests.server import REPO, running_service

CLIENTS = 4  # few enough that stable has idle moments for the shadow copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    parser.add_argument("--model", default="sentiment-imdb")
    parser.add_argument("--candidate", type=int, default=1, help="the older version tried against the newest")
    parser.add_argument("--requests", type=int, default=600, help="requests in each step")
    parser.add_argument("--weight", type=float, default=0.2, help="the canary's share")
    args = parser.parse_args()
    texts = reviews(args.requests)
    with tempfile.TemporaryDirectory() as folder, running_service(
        args.artifacts, Path(folder) / "service.log", 180, rollout_dir=str(Path(folder) / "rollouts"),
        reload_interval_s="0.5", log_level="warning",
    ) as service, httpx.Client(base_url=service.base_url, timeout=60) as http:
        stable = http.get(f"/models/{args.model}").json()["serving_version"]

        def command(*options: str) -> None:
            subprocess.run([sys.executable, "-m", "service.rollout", args.model, "--artifacts-dir",
                            str(args.artifacts), "--rollout-dir", str(Path(folder) / "rollouts"), *options],
                           check=True, capture_output=True, cwd=REPO)

        print(f"{args.model}: stable {stable}, candidate {args.candidate}; {len(texts)} IMDB test reviews per step, "
              f"{CLIENTS} concurrent clients\n")
        command("--stable", str(stable), "--candidate", str(args.candidate), "--mode", "shadow", "--weight", "1")
        time.sleep(1.5)  # three reload intervals
        answered = _send(http, args.model, texts, "shadow")
        time.sleep(2)  # the last copies, and one more look at the gates
        _report("shadow, every request copied", answered, http.get(f"/models/{args.model}/rollout").json())

        command("--candidate", str(args.candidate), "--mode", "canary", "--weight", str(args.weight))
        time.sleep(1.5)
        answered = _send(http, args.model, texts, "canary")
        time.sleep(1.5)
        _report(f"canary, {args.weight:.0%} of callers", answered, http.get(f"/models/{args.model}/rollout").json())


def _send(http: httpx.Client, model: str, texts: list[str], step: str) -> Counter[Any]:
    """Every text once, by CLIENTS clients; the count of answers by (status, version)."""
    def one(index: int) -> tuple[int, int | None]:
        response = http.post("/sentiment", json={"text": texts[index], "model": model},
                             headers={"X-Routing-Key": f"{step}-{index}"})
        return response.status_code, response.json().get("version") if response.status_code == 200 else None

    with ThreadPoolExecutor(CLIENTS) as pool:
        return Counter(pool.map(one, range(len(texts))))


def _report(step: str, answered: Counter[Any], rollout: dict[str, Any]) -> None:
    print(f"## {step}")
    print("answers (status, version): " + ", ".join(f"{key}: {count}" for key, count in sorted(answered.items())))
    print(f"state: {rollout['state']}")
    if rollout["policy"]["rollback"]:
        print("rollback: " + json.dumps(rollout["policy"]["rollback"]))
    print("| version | requests | errors | error rate | p99 ms |\n|---|---:|---:|---:|---:|")
    for version, figures in rollout["versions"].items():
        print(f"| {version} | {figures['requests']} | {figures['errors']} | {figures['error_rate']} "
              f"| {figures['p99_ms']} |")
    if rollout["shadow"]:
        shadow = rollout["shadow"]
        print(f"shadow: copies {shadow['copies']}, dropped {shadow['dropped']}, agreement {shadow['agreement']}, "
              f"mean top-1 difference {shadow['mean_top1_difference']}")
    print("| gate | status | value | limit |\n|---|---|---:|---:|")
    for gate in rollout["gates"]:
        print(f"| {gate['gate']} | {gate['status']} | {gate['value']} | {gate['limit']} |")
    print()


if __name__ == "__main__":
    main()
