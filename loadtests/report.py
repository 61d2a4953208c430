"""Print a locust run's per-endpoint statistics as a markdown table.

    python -m loadtests.report bench-results/loadtest/run_stats.csv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def table(stats_csv: Path) -> str:
    with open(stats_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = ["| endpoint | requests | requests/s | p50 ms | p95 ms | p99 ms | failures |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        name = "**all**" if row["Name"] == "Aggregated" else row["Name"]
        count, failures = int(row["Request Count"]), int(row["Failure Count"])
        share = f" ({failures / count:.2%})" if failures and count else ""
        lines.append(f"| {name} | {count} | {float(row['Requests/s']):.1f} | {row['50%']} | {row['95%']} | "
                     f"{row['99%']} | {failures}{share} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stats_csv", type=Path, help="the <prefix>_stats.csv that locust --csv <prefix> wrote")
    print(table(parser.parse_args().stats_csv))


if __name__ == "__main__":
    main()
