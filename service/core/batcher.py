"""Dynamic batching: many concurrent requests, one model call.

Callers `submit` a batch of rows (an array, or a list); its rows wait in a bounded queue
until a batch is full or `max_delay_s` has passed since the oldest arrived or, if it came
while the model was busy, since the model came free. Each batch is one model call
on the shared model executor (never on the event loop), and every caller gets back exactly
its own rows, in order.

A caller's rows travel whole: they are split only into pieces of at most `max_batch_size`
rows, and a batch is made of whole pieces, so a client's 8 images are never taken apart
and stacked again. A batch is formed only when one of this batcher's `concurrency`
slots is free, so while the model is busy the queue fills and the next batch is larger:
batching adapts to load with no further setting.

Rows submitted with `low_priority` (the variants an explanation asks about: service.core.explaining)
wait in a queue of their own, in smaller pieces: a batch takes every normal piece that fits first,
then fills what is left with low-priority ones, so that a plain request arriving while an
explanation's rows are queued goes into the next batch ahead of them, and both kinds share
batches. The queue limit holds for each kind on its own, so that queued explanations never take a
plain request's place (nor plain requests an explanation's). Low-priority rows are not shown to
monitoring: they are not traffic, only its variants.

Two optional observers: with tracing on, each piece remembers its request's span and each
batch gets spans of its own (service.core.otel; off, the tracer does nothing); with monitoring on,
each batch's outputs and its requests' input summaries go to `watch`'s callback, once per batch
on the event loop after its callers have their answers (service.core.monitoring).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from service.core.errors import DeadlineExceeded, InferenceFailed, Overloaded, ShuttingDown
from service.core.metrics import BatcherMetrics
from service.core.tracing import BatchTracing

log = logging.getLogger("service.batcher")

Rows = TypeVar("Rows", bound=Sequence[Any])
# Called with each batch's outputs and the input summaries (service.core.monitoring) its requests sent.
BatchObserver = Callable[[np.ndarray, list[Any]], None]


@dataclass
class Answer:
    """The output rows for one caller's inputs, and the size of the largest batch that served them."""

    outputs: np.ndarray
    batch_size: int


@dataclass
class _Call:
    """One batch's model call in flight: its outputs to come, its size, its span (with tracing on)."""

    outputs: asyncio.Future[np.ndarray]
    size: int
    span: Any = None


@dataclass(eq=False)  # compared by identity: rows may be arrays
class _Piece(Generic[Rows]):
    rows: Rows
    future: asyncio.Future[tuple[np.ndarray, int]]
    span: Any = None  # the request's span context, with tracing on
    inputs: Any = None  # the request's input summary (on its first piece), with monitoring on
    low_priority: bool = False
    enqueued: float = field(default_factory=time.monotonic)


class Batcher(Generic[Rows]):
    """Queues rows for one model version and runs them in batches.

    `predict` takes one batch (what `concat` made of the pieces) and returns one output row
    per input row.
    """

    def __init__(
        self,
        predict: Callable[[Rows], np.ndarray],
        concat: Callable[[list[Rows]], Rows],
        *,
        executor: Executor,
        concurrency: int,
        max_batch_size: int,
        max_delay_s: float,
        queue_limit: int,
        timeout_s: float,
        metrics: BatcherMetrics,
        tracing: BatchTracing | None = None,
    ) -> None:
        self._predict = predict
        self._concat = concat
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.queue_limit = queue_limit
        self.timeout_s = timeout_s
        self._metrics = metrics
        self._tracing = tracing or BatchTracing()  # the default traces nothing
        self._observe: BatchObserver | None = None
        self._queue: deque[_Piece[Rows]] = deque()
        self._low: deque[_Piece[Rows]] = deque()  # low-priority pieces, taken after every normal one
        self._queued_rows = 0  # of both kinds
        self._queued_low = 0  # of them, low-priority
        self._arrived = asyncio.Event()
        self._free_slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._collect_forever())

    @property
    def busy(self) -> bool:
        """Rows queued or a batch being computed: work for this version that is not done."""
        return self._queued_rows > 0 or bool(self._in_flight)

    def watch(self, observe: BatchObserver) -> None:
        """Hand every later batch's outputs to `observe` (after the warm-up, which is no real traffic)."""
        self._observe = observe

    async def submit(self, rows: Rows, timeout_s: float | None = None, inputs: Any = None,
                     low_priority: bool = False) -> Answer:
        """Queue `rows` and wait for their outputs, in order, at most `timeout_s` (the request timeout).

        `inputs` summarises the request's inputs for monitoring (service.core.monitoring.InputSummary).
        `low_priority` rows go after every normal row queued (the module docstring).
        """
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self._closed:
            raise ShuttingDown("the model version is shutting down")
        if low_priority and self._queued_low + len(rows) > self.queue_limit:
            raise Overloaded(f"{self._queued_low} explanation inputs already queued (limit {self.queue_limit})")
        queued_normal = self._queued_rows - self._queued_low
        if not low_priority and queued_normal + len(rows) > self.queue_limit:
            raise Overloaded(f"{queued_normal} inputs already queued (limit {self.queue_limit})")
        loop = asyncio.get_running_loop()
        # Low-priority pieces are a quarter batch, so that they can fill what normal pieces leave.
        size = max(1, self.max_batch_size // 4) if low_priority else self.max_batch_size
        span = self._tracing.current()
        pieces: list[_Piece[Rows]] = [
            _Piece(rows[start : start + size], loop.create_future(), span, low_priority=low_priority)  # type: ignore[arg-type]  # a slice of Rows is Rows
            for start in range(0, len(rows), size)
        ]
        pieces[0].inputs = inputs
        (self._low if low_priority else self._queue).extend(pieces)
        self._queued_rows += len(rows)
        self._queued_low += len(rows) if low_priority else 0
        self._metrics.queue_depth.set(self._queued_rows)
        self._arrived.set()
        try:
            # Awaiting the futures in turn under one deadline needs no extra task per request.
            async with asyncio.timeout(timeout_s):
                results = [await piece.future for piece in pieces]
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {timeout_s} s") from None
        finally:
            self._abandon(pieces)
        outputs = results[0][0] if len(results) == 1 else np.concatenate([out for out, _ in results])
        return Answer(outputs=outputs, batch_size=max(batch for _, batch in results))

    def _abandon(self, pieces: list[_Piece[Rows]]) -> None:
        """A caller that gave up (timeout, disconnect) frees its queue places at once."""
        if all(piece.future.done() and not piece.future.cancelled() for piece in pieces):
            return  # answered: nothing of it is queued
        for piece in pieces:
            piece.future.cancel()
            try:
                (self._low if piece.low_priority else self._queue).remove(piece)
            except ValueError:  # already in a batch being computed; its answer will be dropped
                continue
            self._dequeued(piece)
        self._metrics.queue_depth.set(self._queued_rows)

    def refuse_queued(self, error: Exception) -> None:
        """Answer every caller still waiting for a batch with `error`; batches being computed go on."""
        for piece in [*self._queue, *self._low]:
            if not piece.future.done():
                piece.future.set_exception(error)
        self._queue.clear()
        self._low.clear()
        self._queued_rows = self._queued_low = 0
        self._metrics.queue_depth.set(0)

    async def close(self) -> None:
        """Take no new inputs, answer everything already queued, then return."""
        self._closed = True
        self._arrived.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _collect_forever(self) -> None:
        while True:
            await self._free_slots.acquire()
            batch = await self._next_batch(time.monotonic())
            if batch is None:
                self._free_slots.release()
                return
            # The model call is handed to its thread here and now: a new task's first step would wait
            # behind everything already scheduled on the loop (the last batch's answers), model idle.
            call = self._start(batch)
            task = asyncio.get_running_loop().create_task(self._finish(batch, call))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _next_batch(self, slot_free: float) -> list[_Piece[Rows]] | None:
        """Wait for a first piece, then for a full batch or the delay to pass.

        The delay counts from the oldest piece's arrival, or from `slot_free` (when the model
        came free for this batch) if that is later. Counted from arrival alone, pieces that
        queued behind a busy model would go at once as a part batch; under a steady load of
        one batch's worth of callers the batches could then stay split in two for good (half
        the callers queue while the other half is computed), which costs the models whose cost
        is more per batch than per input (docs/decisions/0005-batch-delay-start.md).
        """
        while True:
            while not (self._queue or self._low):
                if self._closed:
                    return None
                self._arrived.clear()
                await self._arrived.wait()
            oldest = min(queue[0].enqueued for queue in (self._queue, self._low) if queue)
            deadline = max(oldest, slot_free) + self.max_delay_s
            while self._queued_rows < self.max_batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take()
            if batch:
                return batch

    def _take(self) -> list[_Piece[Rows]]:
        """Whole pieces from the front of the normal queue, then of the low-priority one, up to max_batch_size rows."""
        batch: list[_Piece[Rows]] = []
        rows = 0
        for queue in (self._queue, self._low):
            while queue and rows + len(queue[0].rows) <= self.max_batch_size:
                piece = queue.popleft()
                self._dequeued(piece)
                batch.append(piece)
                rows += len(piece.rows)
        self._metrics.queue_depth.set(self._queued_rows)
        return batch

    def _dequeued(self, piece: _Piece[Rows]) -> None:
        self._queued_rows -= len(piece.rows)
        self._queued_low -= len(piece.rows) if piece.low_priority else 0

    def _start(self, batch: list[_Piece[Rows]]) -> _Call:
        started = time.monotonic()
        for piece in batch:
            self._metrics.queue_wait.observe(started - piece.enqueued)
        size = sum(len(piece.rows) for piece in batch)
        self._metrics.batch_size.observe(size)
        span = self._tracing.start_batch([(p.span, p.enqueued, len(p.rows)) for p in batch], started, size)
        outputs = asyncio.get_running_loop().run_in_executor(
            self._executor, self._call_model, [p.rows for p in batch], size, span
        )
        return _Call(outputs, size, span)

    async def _finish(self, batch: list[_Piece[Rows]], call: _Call) -> None:
        try:
            outputs = await call.outputs
        except Exception as exc:
            error = InferenceFailed(f"model call failed for a batch of {call.size}: {exc}")
            for piece in batch:
                if not piece.future.done():
                    piece.future.set_exception(error)
            if call.span is not None:
                call.span.end()
            return
        finally:
            # The slot frees as soon as the model is done, so that the next batch is formed before
            # this one's callers are answered (their answers then run while the model computes).
            self._free_slots.release()
        answers = _split(outputs, batch)
        for piece, rows in zip(batch, answers, strict=True):
            if not piece.future.done():
                piece.future.set_result((rows, call.size))
        if call.span is not None:
            call.span.end()
        if self._observe is not None:
            # Here, on the event loop, once every caller has its answer: on the model thread this
            # Python work would wait for the GIL between two model calls and slow every batch.
            inputs = [p.inputs for p in batch if p.inputs is not None]
            if any(p.low_priority for p in batch):
                outputs = np.concatenate([rows for p, rows in zip(batch, answers, strict=True)
                                          if not p.low_priority] or [outputs[:0]])
            try:
                self._observe(outputs, inputs)
            except Exception:  # monitoring must never cost a batch its answers
                log.exception("monitoring could not record a batch of %d", call.size)

    def _call_model(self, pieces: list[Rows], size: int, batch_span: Any) -> np.ndarray:
        call = self._tracing.start_model_call(batch_span) if batch_span is not None else None
        started = time.perf_counter()
        try:
            outputs = self._predict(pieces[0] if len(pieces) == 1 else self._concat(pieces))
        except Exception as exc:
            if call is not None:
                self._tracing.failed(call, exc)
                self._tracing.failed(batch_span, exc)
            raise
        finally:
            if call is not None:
                call.end()
        self._metrics.inference.observe(time.perf_counter() - started)
        if len(outputs) != size:  # never shift answers onto the wrong callers
            raise RuntimeError(f"model returned {len(outputs)} rows for {size} inputs")
        return outputs


def _split(outputs: np.ndarray, batch: list[_Piece[Any]]) -> list[np.ndarray]:
    """A batch's outputs cut into each piece's rows, in order."""
    ends = np.cumsum([len(piece.rows) for piece in batch])[:-1]
    return np.split(outputs, ends)
