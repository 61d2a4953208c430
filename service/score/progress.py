"""A progress line for a scoring job: rows done, rows/s and the time left, on stderr.

On a terminal the line is redrawn in place a few times a second; elsewhere (a log, a pipe) a
plain line is written every `log_interval_s`. The total is known for Parquet and image folders;
for CSV and JSON Lines the share done is the share of the file's bytes read.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(self, title: str, total_rows: int | None, first_row: int, stream: TextIO | None = None,
                 fraction_read: Callable[[], float | None] = lambda: None, *, interactive: bool | None = None,
                 log_interval_s: float = 10.0) -> None:
        self.title = title
        self.total_rows = total_rows
        self.first_row = first_row  # rows a resumed job had done before this run
        self.rows = first_row
        self.stream = stream or sys.stderr
        self._fraction_read = fraction_read
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._interval = 0.2 if self.interactive else log_interval_s
        self.started = time.monotonic()
        self._shown = self.started

    @property
    def rate(self) -> float:
        """Rows per second in this run."""
        elapsed = time.monotonic() - self.started
        return (self.rows - self.first_row) / elapsed if elapsed > 0 else 0.0

    def update(self, rows: int) -> None:
        self.rows = rows
        now = time.monotonic()
        if now - self._shown >= self._interval:
            self._shown = now
            self._show(self.line())

    def line(self) -> str:
        rate = self.rate
        share: float | None = None
        if self.total_rows:
            share = self.rows / self.total_rows
            counted = f"{self.rows:,}/{self.total_rows:,} rows"
        else:
            share = self._fraction_read()
            counted = f"{self.rows:,} rows"
        parts = [self.title]
        if share is not None:
            filled = round(20 * min(share, 1.0))
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {100 * share:3.0f}%")
        parts += [counted, f"{rate:,.0f} rows/s"]
        if share and rate > 0:
            remaining_rows = self.rows * (1 - share) / share if share < 1 else 0.0
            parts.append(f"{_duration(remaining_rows / rate)} left")
        return "  ".join(parts)

    def close(self, summary: str) -> None:
        """End the line and write the job's summary."""
        if self.interactive:
            self.stream.write("\r\x1b[K")
        self.stream.write(summary + "\n")
        self.stream.flush()

    def _show(self, line: str) -> None:
        if self.interactive:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
