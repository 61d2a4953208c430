"""What stops a scoring job before it starts, and what marks one row as unreadable."""

from __future__ import annotations

from dataclasses import dataclass


class Refused(Exception):
    """The job cannot start as asked (a missing file or column, an unknown format); the message names it.

    Raised before any row is scored; the command line exits with status 2.
    """


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row the reader could not give a value for (a missing column, a line that is not JSON)."""

    message: str
