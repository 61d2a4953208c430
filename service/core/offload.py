"""Where a piece of CPU work runs: right on the event loop when it is small, on a pool when it is not.

A 1 KB JPEG decodes in tens of microseconds, less than handing it to a thread and back (the
GIL alone may take up to its switch interval to pass). A large image or a large v2 tensor
would stall every other request on the loop meanwhile, so it goes to the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Offloader:
    """Runs work of a given size in bytes inline up to `inline_max_bytes`, else on `pool`."""

    pool: Executor
    inline_max_bytes: int = 16 * 1024

    def inline(self, size: int) -> bool:
        return size <= self.inline_max_bytes

    async def run(self, size: int, work: Callable[..., T], *args: object) -> T:
        if self.inline(size):
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, work, *args)
