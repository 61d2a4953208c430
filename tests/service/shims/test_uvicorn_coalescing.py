"""service/coalescing_http.py: one write per response, over a fake transport and a real uvicorn."""

from __future__ import annotations

import asyncio

import uvicorn

from service.shims.uvicorn_coalescing import CoalescingHttpProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        assert not self.closed, "a write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def _next_turn() -> None:
    await asyncio.sleep(0)


async def test_the_writes_of_one_loop_turn_reach_the_socket_as_one() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.writes == []
    await _next_turn()
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"a later chunk")
    await _next_turn()
    assert real.writes[1:] == [b"a later chunk"]


async def test_a_close_sends_what_was_written_before_it_and_nothing_is_written_after() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last answer")
    transport.close()
    assert (real.writes, real.closed) == ([b"last answer"], True)
    await _next_turn()  # the flush scheduled by the write finds nothing left, and does not write
    assert real.writes == [b"last answer"]


async def test_writes_pending_when_the_client_goes_away_are_dropped_not_raised() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"an answer nobody will read")
    real.closed = True  # the connection was lost within this turn
    await _next_turn()
    assert real.writes == []


async def _answer(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def test_a_real_server_answers_keep_alive_and_pipelined_requests_in_order() -> None:
    server = uvicorn.Server(uvicorn.Config(_answer, host="127.0.0.1", port=0, http=CoalescingHttpProtocol,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = [await _read_response(reader), await _read_response(reader)]
        writer.write(b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers.append(await _read_response(reader))
        assert answers == [b"/one", b"/two", b"/three"]
        assert await reader.read() == b""  # the server closed the connection after the last answer
        writer.close()
    finally:
        server.should_exit = True
        await serving


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in head.strip().split(b"\r\n")[1:])
    length = int(headers[b"content-length"])
    return await reader.readexactly(length)
