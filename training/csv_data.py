"""A user's own labelled texts, as a CSV file or JSON Lines, read into the splits the sentiment job trains on.

- CSV (any extension but `.jsonl`): a header row naming the columns, then one row per text;
  fields may be quoted, with commas, quotes ("") and newlines inside. Excel's UTF-8 byte-order
  mark is accepted.
- JSON Lines (`.jsonl`): one JSON object per line; blank lines are skipped. A label may be a
  string, a number or a boolean (written as JSON writes it: 1, 2.5, true).

The file must be UTF-8. Labels are kept as strings and sorted, which fixes the model's class
order. Rows are identified by `--id-column` when given (unique, non-empty), else by their
position: for CSV the data row number (1 = the first row after the header), for JSON Lines
the line number. The test split is stratified and fixed by the seed: each class gives
round(test_fraction x its rows), at least one, chosen by a generator seeded with `seed`.

Anything that would make a bad model or a confusing failure later is an error now, naming
the file and, where there is one, the row: a missing column, an empty text or label, bytes
that are not UTF-8, an empty file, one class only, a class too small for the splits.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.text_data import DatasetError, TextDataset, TextSplit


@dataclass(frozen=True)
class Columns:
    text: str
    label: str
    id: str | None = None  # None: rows are identified by their position in the file


@dataclass(frozen=True)
class _Row:
    where: str  # "row 3 (line 5)" or "line 7": for error messages
    position: str  # the row's id when the file has no id column
    record: dict[str, Any]
    field: str = "column"  # what the file calls a field: "column" (CSV) or "key" (JSON Lines)


def read_labelled_file(
    path: Path,
    columns: Columns,
    test_fraction: float = 0.2,
    seed: int = 42,
    validation_fraction: float = 0.1,
    folds: int | None = None,
) -> TextDataset:
    """The file's rows split into training and a stratified test split (see the module docstring).

    `validation_fraction` and `folds` (cross-validation) are checked here too: each class must
    keep enough training rows for them, so that a small class fails now with its name rather
    than deep inside scikit-learn.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise DatasetError(f"{path}: the file is empty")
    jsonl = path.suffix.lower() == ".jsonl"
    text = _decode(path, raw, jsonl)
    rows = list(_jsonl_rows(path, text) if jsonl else _csv_rows(path, text, columns))
    if not rows:
        raise DatasetError(f"{path}: no data rows" + ("" if jsonl else " after the header"))

    texts, labels, ids = [], [], []
    first_seen: dict[str, str] = {}
    for row in rows:
        texts.append(_text(path, row, columns.text))
        labels.append(_label(path, row, columns.label))
        row_id = row.position if columns.id is None else _identifier(path, row, columns.id)
        if row_id in first_seen:
            raise DatasetError(
                f"{path}: {row.where}: id {row_id!r} in {row.field} {columns.id!r} "
                f"is also the id of {first_seen[row_id]}"
            )
        first_seen[row_id] = row.where
        ids.append(row_id)

    names = sorted(set(labels))
    counts = Counter(labels)
    if len(names) < 2:
        raise DatasetError(
            f"{path}: column {columns.label!r} has one class only ({names[0]!r}, {len(rows)} rows); "
            "a classifier needs 2 or more"
        )
    _check_class_sizes(path, columns.label, counts, len(rows), test_fraction, validation_fraction, folds)

    everything = TextSplit(texts, np.array([names.index(label) for label in labels]), ids)
    rng = np.random.default_rng(seed)
    test_index = []
    for index in range(len(names)):
        members = rng.permutation(np.flatnonzero(everything.labels == index))
        test_index.append(members[: _test_rows(len(members), test_fraction)])
    test_rows = np.sort(np.concatenate(test_index))
    train_rows = np.setdiff1d(np.arange(len(rows)), test_rows)
    test = everything.subset(test_rows)
    identified_by = (
        f"column {columns.id!r}"
        if columns.id
        else ("line numbers" if jsonl else "data row numbers, 1 = the first row after the header")
    )
    return TextDataset(
        f"{path.name} (text column {columns.text!r}, label column {columns.label!r})",
        names,
        everything.subset(train_rows),
        test,
        f"stratified {test_fraction:.0%} test split, seed {seed} ({len(test):,} rows; "
        f"ids in test_ids.txt: {identified_by})",
        {},
    )


def _decode(path: Path, raw: bytes, jsonl: bool) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        where = f"line {line}"
        if not jsonl:  # a CSV row can span lines: count the rows that parse before the bad bytes
            before = raw[: exc.start].decode("utf-8-sig", errors="replace")
            records = sum(1 for _ in csv.reader(io.StringIO(before, newline="")))
            where = "the header" if records <= 1 else f"row {records - 1} (line {line})"
        bad = raw[exc.start : exc.start + 4]
        raise DatasetError(
            f"{path}: {where}, byte {exc.start}: bytes that are not UTF-8 ({bad!r}); save the file as UTF-8"
        ) from None


def _csv_rows(path: Path, text: str, columns: Columns) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames
        if not header:
            raise DatasetError(f"{path}: no header row")
        wanted = [c for c in (columns.text, columns.label, columns.id) if c is not None]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DatasetError(
                f"{path}: no column {', '.join(map(repr, missing))} in the header row (its columns: {header})"
            )
        line = reader.line_num + 1  # where the next row starts
        for number, record in enumerate(reader, start=1):
            yield _Row(f"row {number} (line {line})", str(number), record)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None


def _jsonl_rows(path: Path, text: str) -> Iterator[_Row]:
    # split on "\n" only: a JSON string may hold U+2028 and other characters splitlines() breaks on
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: line {number}: not JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: line {number}: a JSON object is needed, found {type(record).__name__}")
        yield _Row(f"line {number}", str(number), record, "key")


def _value(path: Path, row: _Row, column: str) -> Any:
    if column not in row.record:
        raise DatasetError(f"{path}: {row.where}: no {row.field} {column!r}")
    value = row.record[column]
    if value is None:  # a CSV row with fewer fields than the header, or a JSON null
        raise DatasetError(f"{path}: {row.where}: no value in {row.field} {column!r}")
    return value


def _text(path: Path, row: _Row, column: str) -> str:
    value = _value(path, row, column)
    if not isinstance(value, str):
        raise DatasetError(f"{path}: {row.where}: the text in {column!r} must be a string, found {json.dumps(value)}")
    text = value.strip()
    if not text:
        raise DatasetError(f"{path}: {row.where}: empty text in {row.field} {column!r}")
    return text


def _label(path: Path, row: _Row, column: str) -> str:
    value = _value(path, row, column)
    if isinstance(value, dict | list):
        raise DatasetError(f"{path}: {row.where}: a label must be a string or a number, found {json.dumps(value)}")
    label = (value if isinstance(value, str) else json.dumps(value)).strip()
    if not label:
        raise DatasetError(f"{path}: {row.where}: empty label in {row.field} {column!r}")
    return label


def _identifier(path: Path, row: _Row, column: str) -> str:
    value = _value(path, row, column)
    row_id = (value if isinstance(value, str) else json.dumps(value)).strip()
    if not row_id:
        raise DatasetError(f"{path}: {row.where}: empty id in {row.field} {column!r}")
    return row_id


def _test_rows(class_rows: int, test_fraction: float) -> int:
    return max(1, round(test_fraction * class_rows))


def _check_class_sizes(
    path: Path,
    column: str,
    counts: Counter[str],
    total: int,
    test_fraction: float,
    validation_fraction: float,
    folds: int | None,
) -> None:
    """Each class needs a test row and enough training rows for the validation split (2: a
    stratified split needs 2 of each class) or for every cross-validation fold; the validation
    split as a whole needs a row per class."""
    train_needed = max(2, folds or 0)
    for label, count in sorted(counts.items()):
        if count - _test_rows(count, test_fraction) < train_needed:
            needed = next(n for n in range(1, 10**6) if n - _test_rows(n, test_fraction) >= train_needed)
            raise DatasetError(
                f"{path}: class {label!r} in column {column!r} has {count} row(s); the splits need at least "
                f"{needed}: 1 or more for the test split and {train_needed} for "
                + (f"the {folds} cross-validation folds" if folds else "training and validation")
            )
    train_rows = total - sum(_test_rows(c, test_fraction) for c in counts.values())
    validation_rows = math.ceil(validation_fraction * train_rows)
    if validation_rows < len(counts) or train_rows - validation_rows < len(counts):
        raise DatasetError(
            f"{path}: {train_rows} training rows give a validation split of {validation_rows} "
            f"(--validation-fraction {validation_fraction}), and it needs at least one row of each of the "
            f"{len(counts)} classes; add rows or raise --validation-fraction"
        )
