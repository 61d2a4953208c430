"""Shadow copies: the candidate sees a sample of real requests, off the answer's path.

A copy is made once the client has its answer from stable; it waits in one bounded queue per
process. Copies go to the candidate in batches: once a full batch of them waits, or the oldest has
waited `FILL_WAIT_S` (sent one by one, a 10% sample would cost a model call per copy, more than
copying every request in full batches). They are sent only while stable has no client rows queued
or being computed, so a copy never goes to the model ahead of a waiting client request; under a load that
keeps stable busy the queue fills, and copies that find it full are dropped and counted. A copy
that fails or times out on the candidate is counted against the candidate and costs the client
nothing: it was answered before the copy was made.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.versions import ModelVersion

log = logging.getLogger("service.rollout")

# How often a waiting copy looks whether stable has come free. Only while copies wait and stable
# is busy; a model call takes milliseconds, so a copy waits little longer than it must.
IDLE_POLL_S = 0.002
# The longest a copy waits for others to fill a batch with: a copy's answer is a figure, not anyone's wait.
FILL_WAIT_S = 0.5


@dataclass(eq=False)
class ShadowCopy:
    stable: ModelVersion
    candidate: ModelVersion
    rows: Any
    summary: Any
    stable_outputs: np.ndarray
    # Called with the candidate's outputs and seconds taken, or with None and the seconds when it failed.
    done: Callable[[np.ndarray | None, float], None]
    made: float = field(default_factory=time.monotonic)


class ShadowQueue:
    def __init__(self, limit: int, fill_wait_s: float = FILL_WAIT_S) -> None:
        self.limit = limit
        self.fill_wait_s = fill_wait_s
        self._copies: deque[ShadowCopy] = deque()
        self._rows = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._send_forever())

    def offer(self, copy: ShadowCopy) -> bool:
        """Queue a copy; False (and nothing queued) when the queue is full."""
        if len(self._copies) >= self.limit:
            return False
        self._copies.append(copy)
        self._rows += len(copy.rows)
        self._arrived.set()
        return True

    @property
    def waiting(self) -> int:
        return len(self._copies)

    async def close(self) -> None:
        """Stop sending; copies still queued are dropped (they are a sample, not anyone's request)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._copies.clear()
        self._rows = 0

    async def _send_forever(self) -> None:
        while True:
            while not self._copies:
                self._arrived.clear()
                await self._arrived.wait()
            first = self._copies[0]
            full = first.candidate.batcher.max_batch_size
            while self._rows < full and (left := first.made + self.fill_wait_s - time.monotonic()) > 0:
                self._arrived.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)
            while first.stable.batcher.busy:
                await asyncio.sleep(IDLE_POLL_S)
            batch = self._take(first.candidate)
            await asyncio.gather(*(self._send(copy) for copy in batch))

    def _take(self, candidate: ModelVersion) -> list[ShadowCopy]:
        """The front copies for one candidate, at most one of its batches' worth of rows."""
        batch: list[ShadowCopy] = []
        rows = 0
        while self._copies and self._copies[0].candidate is candidate:
            size = len(self._copies[0].rows)
            if batch and rows + size > candidate.batcher.max_batch_size:
                break
            batch.append(self._copies.popleft())
            rows += size
        self._rows -= rows
        return batch

    async def _send(self, copy: ShadowCopy) -> None:
        started = time.perf_counter()
        try:
            answer = await copy.candidate.batcher.submit(copy.rows, inputs=copy.summary)
        except Exception as exc:  # the candidate's failure is a figure, never an error of the service
            log.debug("shadow copy failed on %s version %d: %s", copy.candidate.name, copy.candidate.version, exc)
            copy.done(None, time.perf_counter() - started)
            return
        copy.done(answer.outputs, time.perf_counter() - started)
