"""`PayloadLog`: answered requests, sampled, written as JSON Lines by a thread of its own.

The request's path pays for a coin toss and a queue put, nothing more: hashing, base64 and JSON
happen on the writer thread. The queue is bounded by the size of the inputs waiting in it (image
bytes, text characters), since an image request can hold megabytes; a request that would pass
the bound is not logged and its records are counted in `service_payload_log_dropped_total`.

Each process writes its own file, named by its pid (`payloads-<pid>.jsonl`), so that worker
processes (SERVICE_WORKERS) never rotate one another's files.

One record per input, the fields in docs/operations/payload-log.md:

    {"time": "2026-12-06T03:21:55.123+00:00", "request_id": "...", "index": 0, "trace_id": null,
     "model": "sentiment-imdb", "version": 3, "task": "text-classification", "prediction": "positive",
     "probabilities": {"negative": 0.1, "positive": 0.9}, "text_sha256": "...", "text": "..."}
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from service.payloads.rotating import RotatingFile

if TYPE_CHECKING:
    from service.core.inference import Prediction
    from service.core.metrics import Metrics
    from service.settings import Settings

log = logging.getLogger("service.payloads")


class ImageInput(Protocol):
    """An image as its client sent it: service.core.handlers.image.EncodedImage, or the upload it was read as."""

    @property
    def data(self) -> bytes: ...

    @property
    def filename(self) -> str | None: ...


class _Answered(NamedTuple):
    """What the request's path queues; the writer thread makes the records from it."""

    time: float
    request_id: str
    trace_id: str | None
    prediction: Prediction
    items: Sequence[str | ImageInput]
    results: list[dict[str, Any]]
    size: int  # of the inputs, as the queue's bound counts it


class PayloadLog:
    """Answered requests, sampled, written to `folder` as JSON Lines; `record` never blocks."""

    def __init__(self, folder: Path, metrics: Metrics, *, sample: float = 1.0,
                 texts: Literal["text", "hash"] = "text", images: bool = False,
                 max_bytes: int = 64 * 1024 * 1024, files: int = 8, queue_bytes: int = 64 * 1024 * 1024) -> None:
        self.folder = folder
        self.sample = sample
        self.keep_texts = texts == "text"
        self.keep_images = images
        self.max_bytes = max_bytes
        self.files = files
        self.queue_bytes = queue_bytes
        self._written = metrics.payload_log_written
        self._queue_full = metrics.payload_log_dropped.labels("queue_full")
        self._write_error = metrics.payload_log_dropped.labels("write_error")
        self._queue: queue.SimpleQueue[_Answered | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._file: RotatingFile | None = None
        self._thread: threading.Thread | None = None
        self._failing = False  # a write failed and nothing was written since: warn once, not per batch

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> PayloadLog | None:
        """The log the SERVICE_PAYLOAD_LOG_* settings ask for; None when it is off (no folder)."""
        if settings.payload_log_dir is None:
            return None
        return cls(settings.payload_log_dir, metrics, sample=settings.payload_log_sample,
                   texts=settings.payload_log_texts, images=settings.payload_log_images,
                   max_bytes=settings.payload_log_max_bytes, files=settings.payload_log_files,
                   queue_bytes=settings.payload_log_queue_bytes)

    @property
    def path(self) -> Path:
        """The file this process writes (the newest of its rotation)."""
        assert self._file is not None, "start() first"
        return self._file.path

    def start(self) -> None:
        """Open this process's file and start the writer thread; an unusable folder stops the service here."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = RotatingFile(self.folder, f"payloads-{os.getpid()}", self.max_bytes, self.files)
        except OSError as exc:
            raise RuntimeError(
                f"SERVICE_PAYLOAD_LOG_DIR={str(self.folder)!r}: cannot write the payload log there "
                f"({exc.strerror or exc}); give a writable folder, or leave it empty to turn the log off"
            ) from exc
        self._thread = threading.Thread(target=self._write_until_closed, name="payload-log", daemon=True)
        self._thread.start()

    def record(self, request_id: str, trace_id: str | None, prediction: Prediction,
               items: Sequence[str | ImageInput], results: list[dict[str, Any]]) -> None:
        """Queue one answered request (its texts or images, and the results its client got), if sampled."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        size = sum(len(item) if isinstance(item, str) else len(item.data) for item in items)
        with self._lock:
            admitted = self._queued_bytes + size <= self.queue_bytes
            if admitted:
                self._queued_bytes += size
        if not admitted:
            self._queue_full.inc(len(items))
            return
        self._queue.put(_Answered(time.time(), request_id, trace_id, prediction, items, results, size))

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the file. Call it after the last `record`."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        assert self._file is not None
        self._file.close()

    def _write_until_closed(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # whatever else is waiting goes in the same write
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            answered = [entry for entry in batch if entry is not None]
            self._write(answered)
            if len(answered) < len(batch):  # close() queued its None after the last record
                return

    def _write(self, answered: list[_Answered]) -> None:
        lines: list[bytes] = []
        try:
            for entry in answered:
                lines.extend(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                             for record in self._records(entry))
            assert self._file is not None
            self._file.write_lines(lines)
        # Any failure, not only OSError: the thread must outlive a bad batch, or logging would stop
        # without a word while the queue filled up. The batch counts as lost whole, though the lines
        # before the failure may have reached the file.
        except Exception:
            records = sum(len(entry.items) for entry in answered)
            self._write_error.inc(records)
            if not self._failing:
                log.exception("payload log: %d record(s) could not be written to %s", records, self.folder)
            self._failing = True
        else:
            self._written.inc(len(lines))
            self._failing = False
        finally:
            with self._lock:
                self._queued_bytes -= sum(entry.size for entry in answered)

    def _records(self, entry: _Answered) -> Iterator[dict[str, Any]]:
        version = entry.prediction.version
        labels = version.labels
        common = {"time": datetime.fromtimestamp(entry.time, UTC).isoformat(timespec="milliseconds"),
                  "request_id": entry.request_id}
        served = {"trace_id": entry.trace_id, "model": version.name, "version": version.version,
                  "task": version.card.task}
        # Every class's probability comes from the output row: an image answer lists only its top_k.
        rows = entry.prediction.outputs.tolist()
        for index, (item, result, row) in enumerate(zip(entry.items, entry.results, rows, strict=True)):
            record = {**common, "index": index, **served, "prediction": result["label"],
                      "probabilities": dict(zip(labels, row, strict=True))}
            record.update(self._input(item))
            yield record

    def _input(self, item: str | ImageInput) -> dict[str, Any]:
        kept: dict[str, Any]
        if isinstance(item, str):
            kept = {"text_sha256": hashlib.sha256(item.encode()).hexdigest()}
            if self.keep_texts:
                kept["text"] = item
            return kept
        kept = {"filename": item.filename, "image_sha256": hashlib.sha256(item.data).hexdigest()}
        if self.keep_images:
            kept["image_base64"] = base64.b64encode(item.data).decode("ascii")
        return kept
