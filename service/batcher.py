"""Dynamic batching: many concurrent requests, one model call.

Callers `submit` inputs; they wait in a bounded queue until a batch is full or the oldest
input has waited `max_delay_s`. Each batch runs as one model call on a worker thread (never
on the event loop) and every caller gets exactly the rows that belong to its inputs.

A batch is only formed once a worker is free, so while the model is busy the queue keeps
filling and the next batch is larger: the batcher adapts to load without extra settings.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from service.metrics import BatcherMetrics

In = TypeVar("In")
Out = TypeVar("Out")


class QueueFullError(Exception):
    """The queue cannot take these inputs now; the caller should retry later."""


class DeadlineExceededError(Exception):
    """The inputs were not answered within the request timeout."""


class BatchFailedError(Exception):
    """The model call for the batch these inputs were in failed."""


class BatcherClosedError(Exception):
    """The batcher is shutting down and takes no new inputs."""


@dataclass
class Answer(Generic[Out]):
    """The rows for one caller's inputs, and the size of the largest batch that served them."""

    outputs: list[Out]
    batch_size: int


@dataclass
class _Pending(Generic[In]):
    item: In
    future: asyncio.Future[tuple[Any, int]]
    enqueued: float = field(default_factory=time.monotonic)


class Batcher(Generic[In, Out]):
    def __init__(
        self,
        predict: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch_size: int,
        max_delay_s: float,
        queue_limit: int,
        timeout_s: float,
        workers: int,
        metrics: BatcherMetrics,
    ) -> None:
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.queue_limit = queue_limit
        self.timeout_s = timeout_s
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model")
        self._free_workers = asyncio.Semaphore(workers)
        self._queue: deque[_Pending[In]] = deque()
        self._arrived = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._collect_forever())

    async def submit(self, items: Sequence[In]) -> Answer[Out]:
        """Queue `items` together and wait for their rows, in order."""
        if self._closed:
            raise BatcherClosedError("the model is shutting down")
        if len(self._queue) + len(items) > self.queue_limit:
            raise QueueFullError(f"{len(self._queue)} inputs already queued (limit {self.queue_limit})")
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        self._queue.extend(pending)
        self._metrics.queue_depth.set(len(self._queue))
        self._arrived.set()
        futures = [p.future for p in pending]
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), self.timeout_s)
        except TimeoutError:
            raise DeadlineExceededError(f"no answer within {self.timeout_s} s") from None
        finally:
            for future in futures:  # a caller that gave up frees its queue places
                future.cancel()
        return Answer(outputs=[row for row, _ in results], batch_size=max(size for _, size in results))

    async def close(self) -> None:
        """Take no new inputs, answer everything already queued, then stop the worker threads."""
        self._closed = True
        self._arrived.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def _collect_forever(self) -> None:
        while True:
            await self._free_workers.acquire()
            batch = await self._next_batch()
            if batch is None:
                self._free_workers.release()
                return
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _next_batch(self) -> list[_Pending[In]] | None:
        """Wait for a first input, then for a full batch or the oldest input's delay to pass."""
        while True:
            while not self._queue:
                if self._closed:
                    return None
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._queue[0].enqueued + self.max_delay_s
            while len(self._queue) < self.max_batch_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except TimeoutError:
                    break
            batch: list[_Pending[In]] = []
            while self._queue and len(batch) < self.max_batch_size:
                pending = self._queue.popleft()
                if not pending.future.done():  # skip callers that timed out or went away
                    batch.append(pending)
            self._metrics.queue_depth.set(len(self._queue))
            if batch:
                return batch

    async def _run(self, batch: list[_Pending[In]]) -> None:
        try:
            started = time.monotonic()
            for pending in batch:
                self._metrics.queue_wait.observe(started - pending.enqueued)
            self._metrics.batch_size.observe(len(batch))
            loop = asyncio.get_running_loop()
            try:
                outputs = await loop.run_in_executor(self._executor, self._call_model, [p.item for p in batch])
            except Exception as exc:
                error = BatchFailedError(f"model call failed for a batch of {len(batch)}: {exc}")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                return
            for pending, row in zip(batch, outputs, strict=True):
                if not pending.future.done():
                    pending.future.set_result((row, len(batch)))
        finally:
            self._free_workers.release()

    def _call_model(self, items: list[In]) -> Sequence[Out]:
        started = time.perf_counter()
        outputs = self._predict(items)
        self._metrics.inference.observe(time.perf_counter() - started)
        if len(outputs) != len(items):  # never shift answers onto the wrong callers
            raise RuntimeError(f"model returned {len(outputs)} rows for {len(items)} inputs")
        return outputs
