"""Where a scoring job's input is: a local path, or the URI of any filesystem pyarrow knows.

service.score.inputs opens every byte it reads through a `Location`, never by itself:

- a local path is opened as it always was (`open`, `os.walk`, `stat`): no pyarrow needed, nothing
  slower;
- a URI (`s3://bucket/reviews.csv`, `s3://bucket/photos/`, `gs://...`, `hdfs://...`) goes through
  `pyarrow.fs.FileSystem.from_uri`, so every scheme pyarrow knows works with no code of its own, and
  a folder is a prefix. Credentials and an S3 endpoint come from the environment (`AWS_*`: pyarrow's
  S3 layer is the AWS SDK's) or from the URI's query (`?endpoint_override=host:port&scheme=http`).
  A `file://` URI is a local path.

On Ray each actor opens the same input from its `address`, with the driver's `environment`.
"""

from __future__ import annotations

import io
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from service.score.errors import Refused

URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Each read of a remote file is a request (an HTTP range request on S3), and the csv module asks for
# a line at a time: reads go through a buffer this large, so a request fetches many rows.
REMOTE_READ_BYTES = 8 << 20
# What an actor on another node needs to open a remote input as the driver does: pyarrow's S3 layer
# reads credentials, the region and an endpoint override from these (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...).
PASSED_ON = ("AWS_",)


class Location(ABC):
    """A file or a folder, local or remote."""

    name: str  # as messages show it: the path as given, or the URI without credentials

    @property
    @abstractmethod
    def suffix(self) -> str:
        """The file name's extension, with its dot ("" when none)."""

    @abstractmethod
    def kind(self) -> str | None:
        """"file", "folder", or None when there is nothing there."""

    @abstractmethod
    def stat(self) -> tuple[int, int]:
        """The file's size in bytes and its modification time in nanoseconds."""

    @abstractmethod
    def open(self) -> BinaryIO:
        """The file's bytes: a buffered, seekable reader."""

    @abstractmethod
    def read_bytes(self) -> bytes:
        """The whole file."""

    @abstractmethod
    def arrow_file(self) -> Any:
        """What pyarrow.parquet.ParquetFile reads: the local path, or the filesystem's random-access file."""

    @abstractmethod
    def files(self) -> list[tuple[str, Location]]:
        """Every file below a folder, recursively, as (relative path with / separators, its location),
        sorted by relative path; hidden files and folders (a name starting with a dot) left out."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """What a resumed job compares: the absolute path, or the URI without credentials."""

    @property
    @abstractmethod
    def address(self) -> str:
        """What opens this input on another machine: the absolute path, or the URI as given."""

    def environment(self) -> dict[str, str]:
        """The variables of this process that another machine needs to open it (none for a local path)."""
        return {}


def locate(given: str | Path) -> Location:
    """The input named on the command line: a URI goes to the filesystem pyarrow has for its scheme."""
    if isinstance(given, Path) or not URI.match(given):
        return LocalLocation(Path(given))
    name = _without_credentials(given)
    try:
        import pyarrow
        import pyarrow.fs
    except ImportError:
        raise Refused(f"reading {name!r} needs the pyarrow package, which is not installed here "
                      "(the score extra: make deps, or uv sync --locked --extra score)") from None
    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(given)
    except (OSError, ValueError, pyarrow.ArrowException) as exc:  # an unknown scheme, a malformed URI
        raise Refused(f"cannot open {name!r}: {exc}") from None
    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):
        return LocalLocation(Path(path))
    return ArrowLocation(filesystem, path, name, given)


class LocalLocation(Location):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    @property
    def suffix(self) -> str:
        return self.path.suffix

    def kind(self) -> str | None:
        if not self.path.exists():
            return None
        return "folder" if self.path.is_dir() else "file"

    def stat(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_size, stat.st_mtime_ns

    def open(self) -> BinaryIO:
        return open(self.path, "rb")  # noqa: SIM115  (the caller closes it)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def arrow_file(self) -> Any:
        return self.path

    def files(self) -> list[tuple[str, Location]]:
        found: list[Path] = []
        for folder, subfolders, names in os.walk(self.path):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            found.extend(Path(folder, name) for name in names if not name.startswith("."))
        named = sorted((file.relative_to(self.path).as_posix(), file) for file in found)
        return [(name, LocalLocation(file)) for name, file in named]

    @property
    def identity(self) -> str:
        return str(self.path.resolve())

    @property
    def address(self) -> str:
        return str(self.path.resolve())


class ArrowLocation(Location):
    """A file or a prefix on a pyarrow filesystem (S3, GCS, HDFS, ...), looked up once: the listing of
    a folder gives each file's size and time, so that a folder of many files is one listing, not a
    request per file."""

    def __init__(self, filesystem: Any, path: str, name: str, address: str, info: Any = None) -> None:
        self.filesystem = filesystem
        self.path = path  # the filesystem's own: "bucket/key" on S3
        self.name = name
        self._address = address
        self._info = info

    @property
    def info(self) -> Any:
        """The filesystem's pyarrow.fs.FileInfo (its type, size and time), asked for once."""
        if self._info is None:
            self._info = self.filesystem.get_file_info(self.path)
        return self._info

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    def kind(self) -> str | None:
        from pyarrow.fs import FileType

        return {FileType.File: "file", FileType.Directory: "folder"}.get(self.info.type)

    def stat(self) -> tuple[int, int]:
        return self.info.size, self.info.mtime_ns

    def open(self) -> BinaryIO:
        return io.BufferedReader(self.filesystem.open_input_file(self.path), buffer_size=REMOTE_READ_BYTES)

    def read_bytes(self) -> bytes:
        with self.filesystem.open_input_file(self.path) as handle:
            data: bytes = handle.read()
            return data

    def arrow_file(self) -> Any:
        return self.filesystem.open_input_file(self.path)

    def files(self) -> list[tuple[str, Location]]:
        from pyarrow.fs import FileSelector, FileType

        prefix = self.path.rstrip("/") + "/"
        scheme = urlsplit(self.name).scheme
        found: list[tuple[str, Location]] = []
        for info in self.filesystem.get_file_info(FileSelector(self.path, recursive=True)):
            relative = info.path.removeprefix(prefix)
            if info.type != FileType.File or any(part.startswith(".") for part in relative.split("/")):
                continue
            uri = f"{scheme}://{info.path}"
            found.append((relative, ArrowLocation(self.filesystem, info.path, uri, uri, info)))
        found.sort(key=lambda named: named[0])
        return found

    @property
    def identity(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        return self._address

    def environment(self) -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name.startswith(PASSED_ON)}


def _without_credentials(uri: str) -> str:
    """The URI without a user name and password (`s3://KEY:SECRET@bucket/...`), for messages and manifests."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
