"""What a client sees of the ingress, whichever it is (HAProxy or Ray's classic proxy): the headers
that name the replica and the request, and the 503 of an overloaded replica."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx

# Texts per request: SERVICE_MAX_TEXTS's default, which the settings check keeps at most SERVICE_QUEUE_LIMIT.
FULL_REQUEST_TEXTS = 64


def check_headers_of_an_answer(url: str) -> None:
    """An answer names its replica and node, echoes the client's request id and makes one when there is none."""
    with httpx.Client(base_url=url, timeout=10) as http:
        request_id = f"scale-{secrets.token_hex(6)}"
        sent = http.post("/sentiment", json={"text": "good"}, headers={"X-Request-ID": request_id})
        made = http.post("/sentiment", json={"text": "good"})
    assert sent.status_code == 200 and made.status_code == 200, (sent.text, made.text)
    assert sent.headers.get_list("x-request-id") == [request_id]
    assert len(made.headers.get_list("x-request-id")) == 1 and made.headers["x-request-id"] != request_id
    for response in (sent, made):
        assert response.headers["x-replica"] and response.headers["x-replica-node"]


def overloaded_answer(url: str, clients: int = 16, timeout_s: float = 60) -> httpx.Response:
    """The first 503 of bursts of full requests sent all at once.

    Each request is a full queue's worth of texts for one replica (with SERVICE_QUEUE_LIMIT=64 and
    one text per model call, the queue stays full for 64 calls), so requests that reach a replica
    while another's texts are queued are refused; bursts are repeated until one is, or `timeout_s`.
    """
    body = {"texts": [f"good text {i}" for i in range(FULL_REQUEST_TEXTS)]}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=clients)) as http, \
            ThreadPoolExecutor(clients) as pool:
        while time.monotonic() < deadline:
            answers = list(pool.map(lambda _: http.post("/sentiment", json=body), range(clients)))
            unexpected = [a for a in answers if a.status_code not in (200, 503)]
            assert not unexpected, [(a.status_code, a.text[:200]) for a in unexpected]
            refused = [a for a in answers if a.status_code == 503]
            if refused:
                return refused[0]
    raise AssertionError(f"no request was refused in {timeout_s} s of bursts of {clients}")


def check_overloaded_answer(url: str) -> httpx.Response:
    """The refusal is the service's own: its JSON error, Retry-After, and the replica and request headers."""
    refused = overloaded_answer(url)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["x-replica"] and refused.headers["x-replica-node"]
    return refused
