"""JSON Lines files rotated by size: `<stem>.jsonl` is written, `<stem>.1.jsonl` is the one before, and so on.

The standard library's RotatingFileHandler does the same renaming, but it is a logging handler:
each line would travel as a LogRecord, and a failed write goes to `handleError`, which prints to
stderr, where the payload log needs the error itself to count the lost records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class RotatingFile:
    """Lines appended to `folder/<stem>.jsonl`; at most `files` files of about `max_bytes` each.

    A line never straddles two files: one that would pass `max_bytes` starts the next file
    (a single line longer than `max_bytes` gets a file of its own). Opening an existing file
    appends to it, so a restarted process with the same stem keeps its cap.
    """

    def __init__(self, folder: Path, stem: str, max_bytes: int, files: int) -> None:
        self.folder = folder
        self.stem = stem
        self.max_bytes = max_bytes
        self.files = files
        self.path = self.numbered(0)
        self._file = open(self.path, "ab")  # noqa: SIM115 (it stays open until close())
        self._size = self._file.tell()

    def numbered(self, n: int) -> Path:
        """The file `n` rotations old: 0 is the one being written."""
        return self.folder / (f"{self.stem}.jsonl" if n == 0 else f"{self.stem}.{n}.jsonl")

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Append `lines` (each ending in a newline) and hand them to the OS; OSError when that fails."""
        for line in lines:
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._file.write(line)
            self._size += len(line)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        try:
            self.numbered(self.files - 1).unlink(missing_ok=True)  # the oldest kept (with files=1, the current)
            for n in range(self.files - 2, -1, -1):
                if self.numbered(n).exists():
                    self.numbered(n).replace(self.numbered(n + 1))
        finally:  # even after a failed rename, later writes need an open file
            self._file = open(self.path, "ab")  # noqa: SIM115
            self._size = self._file.tell()
