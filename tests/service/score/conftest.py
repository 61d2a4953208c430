"""Running `python -m service.score` in-process on the tiny models, and reading what it wrote."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.score.__main__ import main

PROBABILITIES = ("probability", "probability_negative", "probability_positive", "probability_red",
                 "probability_green", "probability_blue")


@dataclass
class Run:
    status: int
    stderr: str


@pytest.fixture
def score(artifacts_dir: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """`score(*arguments)`: the command's exit status and what it wrote on stderr."""
    monkeypatch.setenv("SERVICE_ARTIFACTS_DIR", str(artifacts_dir))

    def run(*arguments: object) -> Run:
        status = main([str(argument) for argument in arguments])
        return Run(status, capsys.readouterr().err)

    return run


def write_texts(path: Path, records: list[dict[str, Any]], encoding: str = "utf-8") -> Path:
    """`records` as the file's format (from its extension): CSV with a header, JSON Lines or Parquet."""
    if path.suffix == ".csv":
        names = list(dict.fromkeys(name for record in records for name in record))
        with open(path, "w", encoding=encoding, newline="") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            writer.writerows(records)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding=encoding)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The output's rows, with CSV's text turned into the values the other formats hold."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for name, value in row.items():
            if value == "":
                row[name] = None
            elif name in ("row", "version"):
                row[name] = int(value)
            elif name in PROBABILITIES:
                row[name] = float(value)
    return rows
