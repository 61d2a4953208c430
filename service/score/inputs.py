"""Reading a scoring job's input in chunks: a CSV, JSON Lines or Parquet file of texts, or a folder of images.

Each source is checked when it is opened (the file, its format, its columns), so that a job that
cannot run is refused before any work with a message naming what is missing (`Refused`). Rows
that cannot be read (a CSV row with too few fields, a JSON line that is not an object or lacks
the text field) are not refusals: they come out as `BadRow`s and get an error row in the output.

Rows are counted from 0, blank lines not counted, in file order (a folder: its files, recursively,
sorted by relative path). `chunks(start_row, size)` starts at any row: a resumed job skips what it
has already written. Nothing here imports TensorFlow, so a refusal is quick.

An input is a local path or a URI (`s3://bucket/reviews.csv`, a folder being a prefix): every
source reads its bytes through its `Location` (service.score.storage), the same code for both.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from service.score.errors import BadRow, Refused
from service.score.storage import Location, locate

INPUT_FORMATS = ("csv", "jsonl", "parquet", "images")
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
JSONL_COLUMN_CHECK_ROWS = 1000  # a text field absent from every one of the first rows is a misnamed column


@dataclass(frozen=True, slots=True)
class ImageFile:
    """One file of an image folder, read when its chunk is decoded (off the reading thread)."""

    location: Location
    name: str  # relative to the folder, with / separators: the row's id


@dataclass(slots=True)
class Chunk:
    """Consecutive input rows: `items` are texts (any JSON or Parquet value), `ImageFile`s or `BadRow`s."""

    first_row: int
    ids: list[Any] | None  # the id column's values, when there is one
    items: list[Any]


@dataclass(frozen=True, slots=True)
class Range:
    """Rows `start` to `start + count - 1` of an input, and where the first one begins in the file when a
    reader can seek there (`offset`, in bytes; -1: read from the start and skip): one task's share on Ray."""

    start: int
    count: int
    offset: int = -1


class Source(ABC):
    """An opened, checked input."""

    kind: str  # "text" or "image": the kind of model it needs
    format: str
    id_name: str | None = None  # the id column's name in the output
    id_arrow_type: Any = None  # its Arrow type, when the input has one (Parquet)
    total_rows: int | None = None  # when known without reading everything

    def __init__(self, location: Location) -> None:
        self.location = location

    @abstractmethod
    def chunks(self, start_row: int, size: int) -> Iterator[Chunk]:
        """Rows from `start_row` on, `size` at a time (the last chunk may be shorter)."""

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed job checks is unchanged: the file's path (or URI), size and modification time."""
        size, mtime_ns = self.location.stat()
        return {"path": self.location.identity, "size": size, "mtime_ns": mtime_ns}

    def fraction_read(self) -> float | None:
        """How much of the input has been read, when rows cannot be counted ahead (from bytes)."""
        return None

    def ranges(self, rows: int) -> list[Range]:
        """The input cut into ranges of `rows` rows (the last may be shorter), for readers on other machines."""
        assert self.total_rows is not None, f"{type(self).__name__} counts its rows in ranges()"
        return [Range(start, min(rows, self.total_rows - start)) for start in range(0, self.total_rows, rows)]

    def read_range(self, part: Range, size: int) -> Iterator[Chunk]:
        """The rows of `part`, `size` at a time, as `chunks` gives them."""
        stop = part.start + part.count
        for chunk in self.chunks(part.start, size):
            if chunk.first_row >= stop:
                return
            keep = stop - chunk.first_row
            yield Chunk(chunk.first_row, None if chunk.ids is None else chunk.ids[:keep], chunk.items[:keep])


def infer_format(location: Location, kind: str, named: str | None) -> str:
    """The input's format: the one named, a folder's "images", or the file's extension's."""
    if named is not None:
        return named
    if kind == "folder":
        return "images"
    found = EXTENSIONS.get(location.suffix.lower())
    if found is None:
        raise Refused(f"cannot tell the format of {location.name!r} from its extension; name it with "
                      f"--input-format ({', '.join(INPUT_FORMATS)})")
    return found


def open_source(given: str | Path, named_format: str | None, text_column: str, id_column: str | None,
                encoding: str) -> Source:
    """The input (a path or a URI), checked: it exists, its format is known, it has the columns named.
    Refused otherwise, also when it cannot be read (no permission, storage that does not answer)."""
    location = locate(given)
    try:
        return _open(location, named_format, text_column, id_column, encoding)
    except OSError as exc:
        raise Refused(f"cannot read input {location.name!r} ({exc})") from None


def _open(location: Location, named_format: str | None, text_column: str, id_column: str | None,
          encoding: str) -> Source:
    kind = location.kind()
    if kind is None:
        raise Refused(f"input {location.name!r} does not exist")
    input_format = infer_format(location, kind, named_format)
    if input_format == "images":
        if kind != "folder":
            raise Refused(f"input {location.name!r} is not a folder (--input-format images reads a folder of "
                          "images)")
        return ImageFolder(location)
    if kind == "folder":
        raise Refused(f"input {location.name!r} is a folder; a folder is read as images, not as {input_format}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise Refused(f"unknown encoding {encoding!r} (--encoding: a Python codec name, e.g. utf-8, latin-1)") \
            from None
    if input_format == "csv":
        return CsvSource(location, text_column, id_column, encoding)
    if input_format == "jsonl":
        return JsonLinesSource(location, text_column, id_column, encoding)
    if input_format == "parquet":
        return ParquetSource(location, text_column, id_column)
    raise Refused(f"unknown input format {input_format!r}; known: {', '.join(INPUT_FORMATS)}")


def _missing_column(location: Location, column: str, flag: str, where: str, present: list[str]) -> Refused:
    shown = ", ".join(repr(name) for name in present[:30]) + (", ..." if len(present) > 30 else "")
    return Refused(f"{location.name!r} has no column {column!r} ({flag}); {where}: {shown or 'nothing'}")


class _TextFile(Source):
    """A file read line by line, whose progress is the share of its bytes read."""

    kind = "text"

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        self._size = location.stat()[0]
        self._raw: BinaryIO | None = None

    def fraction_read(self) -> float | None:
        if self._raw is None or self._raw.closed or not self._size:
            return None
        return min(1.0, self._raw.tell() / self._size)


class CsvSource(_TextFile):
    """A CSV file with a header row, in any encoding Python knows; quoted fields may hold newlines.

    Bytes that are not valid in the encoding are kept (as surrogate escapes): a text holding any
    becomes an error row, not the end of the job.
    """

    format = "csv"

    def __init__(self, location: Location, text_column: str, id_column: str | None, encoding: str) -> None:
        super().__init__(location)
        self.encoding = encoding
        # A review or a document can be longer than the csv module's default field limit (128 KiB);
        # what is too long for the model is an error row (SERVICE_MAX_TEXT_CHARS), not a stopped job.
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with self._open() as text:
            header = next(self._rows(csv.reader(text)), None)
        if header is None:
            raise Refused(f"{location.name!r} is empty: a CSV input needs a header row")
        if isinstance(header, BadRow):
            raise Refused(f"{location.name!r}: the header row is {header.message}")
        header[0] = header[0].removeprefix("\ufeff")  # a byte order mark read as a character
        self.header = header
        self.text_column = text_column
        if text_column not in header:
            raise _missing_column(location, text_column, "--text-column", "its header has", header)
        self._text_index = header.index(text_column)
        self._id_index: int | None = None
        if id_column is not None:
            if id_column not in header:
                raise _missing_column(location, id_column, "--id-column", "its header has", header)
            self._id_index = header.index(id_column)
            self.id_name = id_column

    def _open(self) -> io.TextIOWrapper:
        self._raw = self.location.open()  # closed by the wrapper
        return io.TextIOWrapper(self._raw, encoding=self.encoding, errors="surrogateescape", newline="")

    def chunks(self, start_row: int, size: int) -> Iterator[Chunk]:
        with self._open() as text:
            rows = self._rows(csv.reader(text))
            next(rows, None)  # the header, checked when the file was opened
            yield from _chunked(itertools.islice(rows, start_row, None), start_row, size, self._split)

    @staticmethod
    def _rows(reader: Iterator[list[str]]) -> Iterator[list[str] | BadRow]:
        """Every row, the header first; blank lines skipped, a row the csv module cannot parse as a BadRow."""
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(f"not valid CSV ({exc})")
                continue
            if fields:
                yield fields

    def ranges(self, rows: int) -> list[Range]:
        """Ranges that start at a byte offset, found by reading the file once with the csv module, so that
        a quoted field's newlines are not taken for the end of a row."""
        if not _splits_at_newlines(self.encoding):  # UTF-16 and the like: one range, read from the start
            with self._open() as text:
                total = sum(1 for _ in self._rows(csv.reader(text))) - 1
            return [Range(0, total)] if total > 0 else []
        consumed = 0

        def lines(handle: BinaryIO) -> Iterator[str]:
            # The csv module asks for one line at a time and no more than a row needs, so after each row
            # `consumed` is the offset of the next one.
            nonlocal consumed
            for line in handle:
                consumed += len(line)
                yield line.decode(self.encoding, "surrogateescape")

        found: list[Range] = []
        with self.location.open() as handle:
            records = self._rows(csv.reader(lines(handle)))
            next(records, None)  # the header
            start, offset, row = 0, consumed, 0
            for row, _ in enumerate(records, 1):
                if row % rows == 0:
                    found.append(Range(start, row - start, offset))
                    start, offset = row, consumed
            if row > start:
                found.append(Range(start, row - start, offset))
        return found

    def read_range(self, part: Range, size: int) -> Iterator[Chunk]:
        if part.offset < 0:
            yield from super().read_range(part, size)
            return
        raw = self.location.open()  # closed by the wrapper
        raw.seek(part.offset)
        with io.TextIOWrapper(raw, encoding=self.encoding, errors="surrogateescape", newline="") as text:
            rows = itertools.islice(self._rows(csv.reader(text)), part.count)
            yield from _chunked(rows, part.start, size, self._split)

    def _split(self, row: int, fields: list[str] | BadRow) -> tuple[Any, Any]:
        if isinstance(fields, BadRow):
            return None, BadRow(f"row {row}: {fields.message}")
        identity = None
        if self._id_index is not None and self._id_index < len(fields):
            identity = fields[self._id_index]
        if self._text_index >= len(fields):
            return identity, BadRow(f"row {row}: no {self.text_column!r} value (the row has {len(fields)} "
                                    f"fields, the header {len(self.header)})")
        return identity, fields[self._text_index]


class JsonLinesSource(_TextFile):
    """One JSON object per line (blank lines skipped); the text and id are two of its fields."""

    format = "jsonl"

    def __init__(self, location: Location, text_column: str, id_column: str | None, encoding: str) -> None:
        super().__init__(location)
        self.encoding = encoding
        self.text_column = text_column
        self.id_column = id_column
        self.id_name = id_column
        # No header to check: a field that no object among the first rows has is a misnamed column.
        seen: dict[str, None] = {}
        found = {text_column: False} | ({id_column: False} if id_column else {})
        with location.open() as handle:
            lines = (line for line in handle if line.strip())
            for line in itertools.islice(lines, JSONL_COLUMN_CHECK_ROWS):
                record = self._parse(line)
                if isinstance(record, dict):
                    seen.update(dict.fromkeys(record))
                    for name in found:
                        found[name] = found[name] or name in record
        flags = {text_column: "--text-column"} | ({id_column: "--id-column"} if id_column else {})
        for name, flag in flags.items():
            if seen and not found[name]:
                raise _missing_column(location, name, flag, f"its first {JSONL_COLUMN_CHECK_ROWS} rows have",
                                      list(seen))

    def _parse(self, line: bytes) -> Any:
        try:
            return json.loads(line.decode(self.encoding, "surrogateescape"))
        except ValueError as exc:
            return BadRow(f"not a JSON object ({exc})")

    def chunks(self, start_row: int, size: int) -> Iterator[Chunk]:
        self._raw = self.location.open()
        with self._raw as handle:
            lines = itertools.islice((line for line in handle if line.strip()), start_row, None)
            yield from _chunked(lines, start_row, size, self._split)

    def ranges(self, rows: int) -> list[Range]:
        """Ranges that start at a byte offset: a row is a line, so the offsets are found without parsing."""
        if not _splits_at_newlines(self.encoding):
            with self.location.open() as handle:
                total = sum(1 for line in handle if line.strip())
            return [Range(0, total)] if total else []
        found: list[Range] = []
        row, offset = 0, 0
        with self.location.open() as handle:
            for line in handle:
                if line.strip():
                    if row % rows == 0:
                        found.append(Range(row, 0, offset))
                    row += 1
                offset += len(line)
        return [Range(part.start, min(rows, row - part.start), part.offset) for part in found]

    def read_range(self, part: Range, size: int) -> Iterator[Chunk]:
        if part.offset < 0:
            yield from super().read_range(part, size)
            return
        with self.location.open() as handle:
            handle.seek(part.offset)
            lines = itertools.islice((line for line in handle if line.strip()), part.count)
            yield from _chunked(lines, part.start, size, self._split)

    def _split(self, row: int, line: bytes) -> tuple[Any, Any]:
        record = self._parse(line)
        if isinstance(record, BadRow):
            return None, BadRow(f"row {row}: {record.message}")
        if not isinstance(record, dict):
            return None, BadRow(f"row {row}: a JSON {type(record).__name__}, not an object")
        identity = record.get(self.id_column) if self.id_column else None
        if self.text_column not in record:
            return identity, BadRow(f"row {row}: no {self.text_column!r} field")
        return identity, record[self.text_column]


class ParquetSource(Source):
    """A Parquet file; only the text and id columns are read, a row group at a time."""

    kind = "text"
    format = "parquet"

    def __init__(self, location: Location, text_column: str, id_column: str | None) -> None:
        super().__init__(location)
        pa, pq = _pyarrow()
        try:
            self._file = pq.ParquetFile(location.arrow_file())
        except (OSError, pa.ArrowException) as exc:
            raise Refused(f"{location.name!r} is not a Parquet file ({exc})") from None
        schema = self._file.schema_arrow
        for name, flag in ((text_column, "--text-column"), (id_column, "--id-column")):
            if name is not None and schema.get_field_index(name) < 0:
                raise _missing_column(location, name, flag, "its schema has", schema.names)
        text_type = schema.field(text_column).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type)
                or pa.types.is_string_view(text_type)):
            raise Refused(f"{location.name!r}: column {text_column!r} (--text-column) holds {text_type}, not text")
        self.columns = [text_column] + ([id_column] if id_column else [])
        if id_column:
            self.id_name = id_column
            self.id_arrow_type = schema.field(id_column).type
        self.total_rows = self._file.metadata.num_rows

    def chunks(self, start_row: int, size: int) -> Iterator[Chunk]:
        metadata = self._file.metadata
        first_group, skip = 0, start_row
        while first_group < metadata.num_row_groups and skip >= metadata.row_group(first_group).num_rows:
            skip -= metadata.row_group(first_group).num_rows
            first_group += 1
        groups = list(range(first_group, metadata.num_row_groups))
        batches = self._file.iter_batches(batch_size=max(size, 1024), row_groups=groups, columns=self.columns)

        def rows() -> Iterator[tuple[Any, Any]]:
            for batch in batches:
                texts = batch.column(0).to_pylist()
                ids = batch.column(1).to_pylist() if len(self.columns) > 1 else itertools.repeat(None)
                yield from zip(ids, texts, strict=False)

        yield from _chunked(itertools.islice(rows(), skip, None), start_row, size, lambda _, pair: pair)


class ImageFolder(Source):
    """Every file under a folder (or a prefix), recursively, sorted by relative path (hidden files and folders
    left out)."""

    kind = "image"
    format = "images"
    id_name = "path"

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        self.files = [ImageFile(file, name) for name, file in location.files()]
        self.total_rows = len(self.files)

    def fingerprint(self) -> dict[str, Any]:
        """The folder and a digest of its listing (each file's name, size and modification time)."""
        listing = hashlib.sha256()
        for image in self.files:
            size, mtime_ns = image.location.stat()
            listing.update(f"{image.name}\t{size}\t{mtime_ns}\n".encode("utf-8", "surrogateescape"))
        return {"path": self.location.identity, "files": len(self.files), "listing_sha256": listing.hexdigest()}

    def chunks(self, start_row: int, size: int) -> Iterator[Chunk]:
        for start in range(start_row, len(self.files), size):
            images = self.files[start : start + size]
            yield Chunk(start, [image.name for image in images], list(images))


def _chunked(rows: Iterator[Any], start_row: int, size: int, split: Any) -> Iterator[Chunk]:
    """Group raw rows into chunks of `size`, each row `split` into (id, item) with its row number."""
    row = start_row
    while True:
        batch = list(itertools.islice(rows, size))
        if not batch:
            return
        ids, items = [], []
        for offset, raw in enumerate(batch):
            identity, item = split(row + offset, raw)
            ids.append(identity)
            items.append(item)
        yield Chunk(row, ids, items)
        row += len(batch)


def _splits_at_newlines(encoding: str) -> bool:
    """Whether a file in `encoding` can be cut at its b"\\n" bytes into lines that decode on their own
    (UTF-8 and the one-byte codecs: yes; UTF-16, UTF-32 or a byte order mark: no)."""
    try:
        return "a\n".encode(encoding) == b"a\n" and "\n".encode(encoding) == b"\n"
    except (UnicodeError, LookupError):
        return False


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise Refused("Parquet needs the pyarrow package, which is not installed here "
                      "(the score extra: make deps, or uv sync --locked --extra score)") from None
    return pa, pq
