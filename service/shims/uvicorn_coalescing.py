"""uvicorn's HTTP protocol (httptools), with each response's writes joined into one.

uvicorn writes a response's status line and headers, then its body, as two writes on the
socket: two system calls and, with Nagle's algorithm off, two TCP segments for the client to
read, for a tweet's 200-byte answer. Writes made in the same turn of the event loop (an ASGI
app sends `http.response.start` and its body one after the other, without waiting between
them) are held until the end of that turn and written together
(docs/decisions/0001-coalescing-transport.md). Streamed bodies still go out as they are sent:
a later turn's write is a later write.

Reaches into: `uvicorn.protocols.http.httptools_impl.HttpToolsProtocol.connection_made`.
Tested on: uvicorn 0.55 with httptools 0.9 and uvloop 0.23 (the lock's).
Remove when: uvicorn writes a response's head and a body sent in the same turn in one write.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport that joins the writes of one event-loop turn; anything else goes to the real one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        # A connection the client dropped in this turn takes no more writes (uvloop would raise).
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what was written before the close still goes out, as with the real transport
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        coalescing = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))
