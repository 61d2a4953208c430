"""Readiness, and the drain that SIGTERM starts.

Ready means every model loaded and warm and not draining; with several worker processes,
in all of them (service.core.workers.ReadinessBoard). Draining turns readiness to 503 and
refuses new requests; queued ones are answered. Whatever is still queued shortly before the
shutdown grace runs out is refused with ShuttingDown: a 503 that a load balancer retries on
another replica, where the server would otherwise cancel it with a bare 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from service.core.errors import ShuttingDown
from service.core.workers import ReadinessBoard

log = logging.getLogger("service.draining")


class Drain:
    def __init__(self, workers: int, grace_s: float, refuse_queued: Callable[[Exception], None]) -> None:
        self._grace_s = grace_s
        self._refuse_queued = refuse_queued
        self._board = ReadinessBoard(workers)
        self._loaded_and_warm = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_call: asyncio.TimerHandle | None = None
        self._closed = False
        self.draining = False

    def started(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every model is loaded and warm: ready, on `loop`."""
        self._loop = loop
        self._set_ready(True)

    @property
    def ready(self) -> bool:
        return self._loaded_and_warm and self._board.all_ready()

    def _set_ready(self, ready: bool) -> None:
        self._loaded_and_warm = ready
        self._board.set(ready)

    def begin(self) -> None:
        """Start draining; safe to call from a signal handler, and more than once."""
        if not self.draining:
            log.info("draining: readiness is 503, new requests are refused, queued ones are answered")
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._refuse_queued_before_the_grace_ends)
        self.draining = True
        self._set_ready(False)

    def _refuse_queued_before_the_grace_ends(self) -> None:
        if self._closed:  # the server's wait is over: closing answers what is left
            return
        # Half a second or so for the refusals to be written before the server cancels what is left.
        margin = min(1.0, self._grace_s / 2)
        self._last_call = asyncio.get_running_loop().call_later(self._grace_s - margin, self._refuse_all)

    def _refuse_all(self) -> None:
        self._refuse_queued(ShuttingDown("the service stopped before this request's turn came; try again"))

    def close(self) -> None:
        """The server's wait is over: drain (if not yet) and refuse nothing more at the grace's end."""
        self.begin()
        self._closed = True
        if self._last_call is not None:
            self._last_call.cancel()
