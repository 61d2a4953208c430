"""The scoring pipeline: read chunks, decode them, call the model, write parts, keeping the model busy.

Three kinds of thread share the work, as in the service:

- this thread reads the input a chunk (`batch_size` rows) at a time, and writes answers;
- the decode pool (SERVICE_DECODE_THREADS) reads image files and decodes each chunk's rows
  (`BatchScorer.prepare`);
- one model thread makes one model call per chunk (`BatchScorer.predict`), in input order.

A few chunks are in flight at once, so that while the model computes one chunk the next ones are
decoded and the last one's answers are written: the model waits for nothing but its own calls
(TensorFlow releases the GIL while it computes). Answers are written in input order, a part
(`part_rows` rows) at a time, each part committed by service.score.checkpoint.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from service.core.handlers import EncodedImage
from service.core.workers import quick_gil_handoff
from service.score.checkpoint import Checkpoint
from service.score.errors import BadRow
from service.score.inputs import Chunk, ImageFile, Source
from service.score.outputs import Columns, OutputFormat
from service.score.progress import Progress
from service.score.scorer import BatchScorer, Outputs, Prepared


@dataclass
class Summary:
    rows: int  # rows written in this run
    errors: int  # of them, rows with an error
    seconds: float  # from the first chunk read to the output written

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def score(source: Source, scorer: BatchScorer, output: OutputFormat, checkpoint: Checkpoint, *,
          batch_size: int, part_rows: int, decode_threads: int, progress: Progress | None = None) -> Summary:
    """Score `source` from `checkpoint.rows_done` on, and write the output. `part_rows` is a multiple of
    `batch_size`, so that a chunk never straddles two parts."""
    if part_rows % batch_size:
        raise ValueError(f"part_rows ({part_rows}) must be a multiple of batch_size ({batch_size})")
    started = time.monotonic()
    first = checkpoint.rows_done
    part = _Part(output.columns, output.id_name, first)
    errors = 0
    in_flight: deque[tuple[Chunk, Future[Prepared], Future[Outputs]]] = deque()
    depth = decode_threads + 2  # chunks decoding, one computing, one being written

    def finish_oldest() -> None:
        nonlocal errors
        chunk, prepared, outputs = in_flight.popleft()
        columns = scorer.results(prepared.result(), outputs.result())
        errors += sum(message is not None for message in columns["error"])
        part.add(chunk, columns, scorer)
        if part.rows == part_rows:
            commit()
        elif progress is not None:
            progress.update(part.first + part.rows)

    def commit() -> None:
        end = part.first + part.rows
        checkpoint.commit(part.first, end, lambda path: output.write_part(path, part.columns))
        part.restart(end)
        if progress is not None:
            progress.update(end)

    # The model thread needs the GIL for a moment before and after each call, while this thread and
    # the decode pool hold it (service.core.workers.quick_gil_handoff).
    with quick_gil_handoff():
        decode_pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="decode")
        model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        try:
            for chunk in source.chunks(first, batch_size):
                prepared = decode_pool.submit(_prepare, scorer, chunk)
                in_flight.append((chunk, prepared, model_thread.submit(_predict, scorer, prepared, chunk.first_row)))
                while len(in_flight) > depth or (in_flight and in_flight[0][2].done()):
                    finish_oldest()
            while in_flight:
                finish_oldest()
            if part.rows:
                commit()
            checkpoint.finish(output.join)
        finally:
            decode_pool.shutdown(wait=True, cancel_futures=True)
            model_thread.shutdown(wait=True, cancel_futures=True)
    return Summary(checkpoint.rows_done - first, errors, time.monotonic() - started)


class _Part:
    """The output columns of the rows since the last commit."""

    def __init__(self, names: list[str], id_name: str | None, first: int) -> None:
        self.names = names
        self.id_name = id_name
        self.restart(first)

    def restart(self, first: int) -> None:
        self.first = first
        self.rows = 0
        self.columns: Columns = {name: [] for name in self.names}

    def add(self, chunk: Chunk, scored: Columns, scorer: BatchScorer) -> None:
        size = len(chunk.items)
        for name, values in scored.items():
            self.columns[name].extend(values)
        self.columns["row"].extend(range(chunk.first_row, chunk.first_row + size))
        self.columns["model"].extend([scorer.name] * size)
        self.columns["version"].extend([scorer.version] * size)
        if self.id_name is not None:
            self.columns[self.id_name].extend(chunk.ids if chunk.ids is not None else [None] * size)
        self.rows += size


def _prepare(scorer: BatchScorer, chunk: Chunk) -> Prepared:
    items = chunk.items
    if scorer.kind == "image":
        items = [_read(item, chunk.first_row + offset) if isinstance(item, ImageFile) else item
                 for offset, item in enumerate(items)]
    return scorer.prepare(items, chunk.first_row)


def _predict(scorer: BatchScorer, prepared: Future[Prepared], first_row: int) -> Outputs:
    return scorer.predict(prepared.result(), first_row)


def _read(image: ImageFile, row: int) -> Any:
    try:
        return EncodedImage(image.location.read_bytes(), image.name)
    except OSError as exc:
        return BadRow(f"image {row} ({image.name}): cannot read the file ({exc.strerror or exc})")
