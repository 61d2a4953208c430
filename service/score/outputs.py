"""Writing a scoring job's output: CSV, JSON Lines or Parquet, in parts that are joined at the end.

A job writes its rows a part at a time (service.score.checkpoint commits each part), and joins
the parts into the output file when the input is done: CSV parts are concatenated after the
header, JSON Lines parts concatenated, Parquet parts become one row group each of one file.
A part holds the same rows whether or not the job was interrupted before it, so a resumed job's
output is byte for byte the uninterrupted one's. A `--ray` job's parts are not joined: they are
its output's shards, each written to be read alone (a CSV shard has the header).

Columns, in order: the id column (when the input has one; `path` for an image folder), `row`
(the input row, from 0), `label`, `probability`, `probability_<label>` per class, `error`
(empty unless the row could not be scored), `model` and `version`. Parquet also keeps the model
and version in its schema's metadata.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from service.score.errors import Refused

OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

Columns = dict[str, list[Any]]


def infer_format(path: Path, named: str | None) -> str:
    if named is not None:
        return named
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise Refused(f"cannot tell the output format of {str(path)!r} from its extension; name it with "
                      f"--format ({', '.join(OUTPUT_FORMATS)})")
    return found


def probability_columns(labels: list[str]) -> list[str]:
    return [f"probability_{label}" for label in labels]


def scored_columns(labels: list[str]) -> list[str]:
    """What scoring adds to each row (service.score.scorer fills them)."""
    return ["label", "probability", *probability_columns(labels), "error"]


def output_columns(id_name: str | None, labels: list[str]) -> list[str]:
    return ([id_name] if id_name else []) + ["row", *scored_columns(labels), "model", "version"]


class OutputFormat(ABC):
    """One output format: how a part is written and how the parts become the output file."""

    name: str
    extension: str

    def __init__(self, columns: list[str], id_name: str | None, metadata: dict[str, str],
                 id_arrow_type: Any = None) -> None:
        self.columns = columns
        self.id_name = id_name
        self.metadata = metadata
        self.id_arrow_type = id_arrow_type

    @abstractmethod
    def write_part(self, path: Path, columns: Columns) -> None:
        """Write one part's rows to `path`."""

    def write_shard(self, path: Path, columns: Columns) -> None:
        """Write one shard of a sharded output to `path`: a part that is read alone, never joined."""
        self.write_part(path, columns)

    @abstractmethod
    def join(self, parts: list[Path], destination: Path) -> None:
        """Write the output file from the parts, in order."""

    def _ids(self, columns: Columns) -> None:
        """Ids as text where the format needs one type (values from JSON, bytes a codec could not read)."""
        if self.id_name is not None:
            columns[self.id_name] = [_text(value) for value in columns[self.id_name]]


class CsvOutput(OutputFormat):
    name, extension = "csv", ".csv"

    def write_part(self, path: Path, columns: Columns) -> None:
        self._write(path, columns, header=False)  # joined after the one header

    def write_shard(self, path: Path, columns: Columns) -> None:
        self._write(path, columns, header=True)

    def join(self, parts: list[Path], destination: Path) -> None:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(self.columns)
        with open(destination, "wb") as out:
            out.write(header.getvalue().encode("utf-8"))
            _concatenate(parts, out)

    def _write(self, path: Path, columns: Columns, *, header: bool) -> None:
        self._ids(columns)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            if header:
                writer.writerow(self.columns)
            writer.writerows(zip(*(columns[name] for name in self.columns), strict=True))


class JsonLinesOutput(OutputFormat):
    name, extension = "jsonl", ".jsonl"

    def write_part(self, path: Path, columns: Columns) -> None:
        if self.id_name is not None:  # JSON keeps an id's own type; only unreadable bytes are replaced
            columns[self.id_name] = [_clean(v) if isinstance(v, str) else v for v in columns[self.id_name]]
        names = self.columns
        dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(dumps(dict(zip(names, values, strict=True))) + "\n"
                              for values in zip(*(columns[name] for name in names), strict=True))

    def join(self, parts: list[Path], destination: Path) -> None:
        with open(destination, "wb") as out:
            _concatenate(parts, out)


class ParquetOutput(OutputFormat):
    name, extension = "parquet", ".parquet"

    def __init__(self, columns: list[str], id_name: str | None, metadata: dict[str, str],
                 id_arrow_type: Any = None) -> None:
        super().__init__(columns, id_name, metadata, id_arrow_type)
        try:
            import pyarrow as pa
        except ImportError:
            raise Refused("Parquet output needs the pyarrow package, which is not installed here "
                          "(the score extra: make deps, or uv sync --locked --extra score)") from None
        types = {"row": pa.int64(), "label": pa.string(), "error": pa.string(), "model": pa.string(),
                 "version": pa.int64()}
        if id_name is not None:
            types[id_name] = id_arrow_type or pa.string()
        self.schema = pa.schema([pa.field(name, types.get(name, pa.float64())) for name in columns],
                                metadata=metadata)

    def write_part(self, path: Path, columns: Columns) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.id_arrow_type is None:
            self._ids(columns)
        table = pa.table({name: columns[name] for name in self.columns}, schema=self.schema)
        pq.write_table(table, path)

    def join(self, parts: list[Path], destination: Path) -> None:
        import pyarrow.parquet as pq

        with pq.ParquetWriter(destination, self.schema) as writer:
            for part in parts:
                writer.write_table(pq.read_table(part, schema=self.schema))


def output_format(name: str, columns: list[str], id_name: str | None, metadata: dict[str, str],
                  id_arrow_type: Any = None) -> OutputFormat:
    formats: dict[str, type[OutputFormat]] = {"csv": CsvOutput, "jsonl": JsonLinesOutput, "parquet": ParquetOutput}
    if name not in formats:
        raise Refused(f"unknown output format {name!r}; known: {', '.join(OUTPUT_FORMATS)}")
    return formats[name](columns, id_name, metadata, id_arrow_type)


def _concatenate(parts: list[Path], out: Any) -> None:
    for part in parts:
        with open(part, "rb") as handle:
            shutil.copyfileobj(handle, out, 1024 * 1024)


def _clean(value: str) -> str:
    """`value` as valid UTF-8: bytes an input's codec could not read (kept as escapes) become U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _text(value: Any) -> str | None:
    """An id as text: strings as they are, numbers and booleans as JSON writes them, anything else as str()."""
    if value is None:
        return None
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, (bool, int, float, list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
