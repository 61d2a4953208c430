"""Exactly-once output for a job that may be interrupted: parts committed by rename, and a manifest.

While a job runs, its output is a folder next to the output, `<output>.partial/`:

- `_manifest.json`: what the job is (model, version, the input's path, size and modification
  time, columns, encoding, formats, batch and part sizes, whether it is sharded), written once
  when the job starts (the leading `_` makes Arrow's dataset readers pass it over);
- `part-<first row>-<end row>.<ext>`: the output rows of input rows [first, end), each written to
  a temporary name, flushed to disk and renamed: a part is either all there or not there.

Every part but the last holds `part_rows` rows and starts at a multiple of it, so the parts do not
depend on where a job was interrupted (on Ray, an input that cannot be cut at newlines, such as
UTF-16 text, is one range and so one part). `--resume` checks the manifest against the job it is asked
to run (refused, naming what differs, if it is another) and drops any temporary file.

A local job writes its parts in row order and continues from the end of the last one; the rows
after it are read and scored again, never written twice. When the input is done, the manifest
says so, the parts are joined into the output (written under a temporary name and renamed) and
the folder is removed.

A sharded job (`--ray`) has its parts written by the actors, in any order, each readable alone
(service.score.outputs: `write_shard`); a resumed one hands out only the ranges whose part is not
there. When every part is there, the manifest says so and the folder is renamed to the output.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.score.errors import Refused
from service.score.inputs import Range

MANIFEST = "_manifest.json"
FINISHED, ROWS = "finished", "rows"  # the manifest's keys set once every part is written
SHARDED = "sharded"  # the manifest's key saying whether the parts are a --ray run's shards


class Checkpoint:
    def __init__(self, output: Path, extension: str, *, sharded: bool = False) -> None:
        self.output = output
        self.extension = extension
        self.sharded = sharded
        self.folder = output.with_name(output.name + ".partial")
        self.rows_done = 0  # a local job's: the end of its last part
        self.finished = False

    def check_start(self, resume: bool) -> None:
        """Refuse a fresh job whose output or partial folder is already there (before any work)."""
        if not self.output.parent.is_dir():
            raise Refused(f"the output's folder {str(self.output.parent)!r} does not exist")
        if resume:
            if self.output.exists() and not self.folder.exists():
                raise Refused(f"--resume: {str(self.output)!r} is already complete; nothing to resume")
            return
        if self.folder.exists():
            raise Refused(f"{str(self.folder)!r} holds an interrupted run's output: continue it with --resume, "
                          "or delete the folder to start again")
        if self.output.exists():
            raise Refused(f"output {str(self.output)!r} already exists: choose another --output or delete it")

    def check_resume(self, manifest: dict[str, Any]) -> None:
        """With --resume: check that the folder there is this job's, and find where it stopped (refused if not)."""
        if self.folder.is_dir():
            self._continue(manifest)

    def begin(self, manifest: dict[str, Any]) -> None:
        """Create the job's folder and manifest, unless a job being resumed has them."""
        if self.folder.is_dir():
            return
        self.folder.mkdir()
        _write_atomically(self.folder / MANIFEST, lambda path: _write_json(path, manifest))

    def _continue(self, manifest: dict[str, Any]) -> None:
        path = self.folder / MANIFEST
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise Refused(f"--resume: cannot read {str(path)!r} ({exc}); delete {str(self.folder)!r} to start "
                          "again") from None
        differences = [f"{key} was {recorded.get(key)!r}, is now {manifest.get(key)!r}"
                       for key in sorted((set(manifest) | set(recorded)) - {FINISHED, ROWS})
                       if recorded.get(key) != manifest.get(key)]
        if differences:
            hint = ""
            if recorded.get("version") != manifest.get("version") and recorded.get("version") is not None:
                hint = f" (--version {recorded['version']} continues with the version it started with)"
            if recorded.get(SHARDED) != manifest.get(SHARDED):
                # A local run's parts have no CSV header and a --ray run's ranges need not be its parts.
                hint += (" (a --ray run's shards: continue it with --ray)" if recorded.get(SHARDED)
                         else " (a local run's parts: continue it without --ray)")
            raise Refused(f"--resume: {str(self.folder)!r} is another job's output: " + "; ".join(differences)
                          + hint + f"; delete {str(self.folder)!r} to start again")
        self.finished = bool(recorded.get(FINISHED))
        if self.output.exists() and not self.finished:
            raise Refused(f"--resume: both {str(self.output)!r} and an unfinished {str(self.folder)!r} exist; "
                          "delete one of them")
        for leftover in self.folder.glob("*.tmp"):  # a part being written when the job stopped
            leftover.unlink()
        if self.sharded:  # written in any order: remaining() says which ranges are left
            return
        end = 0
        for first, last, _ in self.parts():
            if first != end:
                raise Refused(f"--resume: {str(self.folder)!r} is missing the rows {end} to {first - 1}; "
                              "delete the folder to start again")
            end = last
        self.rows_done = end

    def parts(self) -> list[tuple[int, int, Path]]:
        """The committed parts, in row order: (first row, end row, file)."""
        found = []
        for path in self.folder.glob(f"part-*{self.extension}"):
            first, last = path.name.removesuffix(self.extension).split("-")[1:]
            found.append((int(first), int(last), path))
        return sorted(found)

    def remaining(self, ranges: list[Range]) -> list[Range]:
        """The ranges whose part is not written yet (all of them when the folder does not exist)."""
        written = {(first, end) for first, end, _ in self.parts()} if self.folder.is_dir() else set()
        return [part for part in ranges if (part.start, part.start + part.count) not in written]

    def commit(self, first: int, end: int, write: Callable[[Path], None]) -> None:
        """Write input rows [first, end)'s output with `write(path)`, durably, under its final name.

        A shard's temporary name is this attempt's own: on a cluster, a range given to another actor
        may still be being written by one presumed dead. Both write the same rows under the final name.
        """
        name = f"part-{first:012d}-{end:012d}{self.extension}"
        attempt = f".{os.getpid()}-{uuid.uuid4().hex[:8]}" if self.sharded else ""
        _write_atomically(self.folder / name, write, attempt)
        self.rows_done = end

    def finish(self, join: Callable[[list[Path], Path], None]) -> None:
        """Mark the job done, join the parts into the output, and remove the folder."""
        self._mark_finished(self.rows_done)
        if not self.output.exists():
            _write_atomically(self.output, lambda target: join([p for _, _, p in self.parts()], target))
        shutil.rmtree(self.folder)

    def finish_shards(self) -> None:
        """Mark a sharded job done and rename its folder to the output: a folder of shards and the manifest."""
        self._mark_finished(sum(end - first for first, end, _ in self.parts()))
        for leftover in self.folder.glob("*.tmp"):  # an attempt that died mid-write; its range was written again
            leftover.unlink(missing_ok=True)
        self.folder.rename(self.output)

    def _mark_finished(self, rows: int) -> None:
        if self.finished:
            return
        path = self.folder / MANIFEST
        manifest = json.loads(path.read_text()) | {FINISHED: True, ROWS: rows}
        _write_atomically(path, lambda target: _write_json(target, manifest))
        self.finished = True


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def _write_atomically(path: Path, write: Callable[[Path], None], attempt: str = "") -> None:
    """`write` to a temporary name in the same folder (`attempt` makes it unique), flush it to disk,
    rename it to `path`."""
    temporary = path.with_name(f"{path.name}{attempt}.tmp")
    write(temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
