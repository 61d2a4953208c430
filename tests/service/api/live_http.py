"""A minimal HTTP/1.1 client on raw sockets, for watching connections as a server shuts down.

httpx and urllib hide what these tests must see: exactly when a request's bytes left, whether a
kept-alive connection was reused, and whether the server closed or reset it with no answer.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return "close" in self.headers.get("connection", "").lower()


class NoAnswer(Exception):
    """The connection was closed or reset before a whole answer arrived."""


def connect(base_url: str, timeout_s: float = 60) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def post_json(path: str, payload: Any) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def read_reply(sock: socket.socket) -> Reply:
    buffer = b""
    try:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise NoAnswer("closed before the answer's head" + (" (part of it came)" if buffer else ""))
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise NoAnswer("closed in the middle of the answer's body")
            body += chunk
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise NoAnswer(f"reset: {exc}") from None
    return Reply(int(status_line.split()[1]), headers, body[:length])
