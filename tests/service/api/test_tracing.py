"""OpenTelemetry traces, recorded by an in-memory exporter: the request's span tree, the batch span
linking every request it served, an incoming W3C traceparent continued, and tracing off by default."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Callable

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from service.app import create_app
from service.core.tracing import Tracing, TracingConfigError, exporters_from, tracing_from_environment
from service.settings import Settings
from tests.service.conftest import serving
from tests.service.images import solid
from tests.tiny_models import expected_positive

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture()
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


async def test_requests_that_share_a_batch_get_one_batch_span_linking_each_of_them(
    make_settings: Callable[..., Settings], exporter: InMemorySpanExporter,
) -> None:
    n = 5
    # A long delay and room for all: the five requests wait for each other and form one batch.
    app = create_app(make_settings(max_batch_size=16, max_batch_delay_ms=300), tracer_provider=_provider(exporter))
    async with serving(app) as http:
        exporter.clear()  # the warm-up made no spans, but be sure only these requests count
        texts = [" ".join(["good"] * i) for i in range(n)]
        responses = await asyncio.gather(*(http.post("/sentiment", json={"text": t}) for t in texts))
    assert [r.status_code for r in responses] == [200] * n
    assert {r.headers["x-batch-size"] for r in responses} == {str(n)}
    spans = exporter.get_finished_spans()

    servers = _named(spans, "POST /sentiment")
    assert len(servers) == n and all(span.kind is SpanKind.SERVER for span in servers)
    # Each request has a trace of its own, quoted in its X-Trace-ID header.
    assert sorted(_hex(s.context.trace_id) for s in servers) == sorted(r.headers["x-trace-id"] for r in responses)
    assert all(s.parent is None for s in servers)
    for span in servers:
        assert span.attributes is not None
        assert span.attributes["http.route"] == "/sentiment" and span.attributes["http.response.status_code"] == 200
        assert span.attributes["model.name"] == "tiny-text" and span.attributes["batch.size"] == n

    [batch] = _named(spans, "batch")
    assert batch.attributes == {"model.name": "tiny-text", "model.version": 2, "batch.size": n, "batch.requests": n}
    linked = {(link.context.trace_id, link.context.span_id) for link in batch.links}
    assert linked == {(s.context.trace_id, s.context.span_id) for s in servers}
    assert batch.parent is not None and (batch.context.trace_id, batch.parent.span_id) in linked

    [call] = _named(spans, "model call")
    assert call.parent is not None and call.parent.span_id == batch.context.span_id
    waits = _named(spans, "queue wait")
    assert len(waits) == n
    by_trace = {s.context.trace_id: s for s in servers}
    for wait in waits:
        server = by_trace[wait.context.trace_id]  # in its own request's trace, as the server span's child
        assert wait.parent is not None and wait.parent.span_id == server.context.span_id
        assert [link.context.span_id for link in wait.links] == [batch.context.span_id]
        assert server.start_time is not None and wait.start_time is not None and wait.end_time is not None
        assert server.start_time <= wait.start_time <= wait.end_time == batch.start_time


async def test_an_incoming_traceparent_is_continued(
    make_settings: Callable[..., Settings], exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(make_settings(), tracer_provider=_provider(exporter))
    with caplog.at_level(logging.INFO, logger="service.access"):
        async with serving(app) as http:
            response = await http.post("/classify-image", content=solid("red"),
                                       headers={"Content-Type": "image/png",
                                                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert response.status_code == 200 and response.headers["x-trace-id"] == TRACE_ID
    spans = exporter.get_finished_spans()
    [server] = _named(spans, "POST /classify-image")
    assert _hex(server.context.trace_id) == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert server.parent.is_remote
    [decode] = _named(spans, "decode image")
    assert decode.parent is not None and decode.parent.span_id == server.context.span_id
    assert decode.attributes == {"image.bytes": len(solid("red"))}
    assert {_hex(s.context.trace_id) for s in spans} == {TRACE_ID}  # the batch too, as this request is its only member
    assert f"trace_id={TRACE_ID}" in next(r.getMessage() for r in caplog.records if "/classify-image" in r.getMessage())


async def test_an_inference_protocol_request_gets_a_decode_span_and_its_answer(
    make_settings: Callable[..., Settings], exporter: InMemorySpanExporter,
) -> None:
    app = create_app(make_settings(), tracer_provider=_provider(exporter))
    # The texts as binary tensor data after the JSON header, as tritonclient sends them.
    raw = b"".join(struct.pack("<I", len(text)) + text for text in (b"good", b"bad"))
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    async with serving(app) as http:
        response = await http.post("/v2/models/tiny-text/infer", content=head + raw,
                                   headers={"Content-Type": "application/octet-stream",
                                            "Inference-Header-Content-Length": str(len(head))})
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"][1::2] == pytest.approx(
        [expected_positive("good", 2), expected_positive("bad", 2)], abs=1e-5)
    spans = exporter.get_finished_spans()
    [server] = _named(spans, "POST /v2/models/{name}/infer")
    [decode] = _named(spans, "decode request")
    assert decode.parent is not None and decode.parent.span_id == server.context.span_id
    assert decode.attributes == {"request.bytes": int(response.request.headers["content-length"])}


async def test_errors_are_traced_and_carry_the_trace_id(
    make_settings: Callable[..., Settings], exporter: InMemorySpanExporter,
) -> None:
    app = create_app(make_settings(max_batch_delay_ms=0), tracer_provider=_provider(exporter))
    async with serving(app) as http:
        failed = await http.post("/sentiment", json={"text": "boom"})  # the model call fails
        unknown = await http.get("/nowhere")
        not_an_image = await http.post("/classify-image", content=b"junk", headers={"Content-Type": "image/png"})
    assert failed.status_code == 500 and unknown.status_code == 404
    assert not_an_image.status_code == 400 and not_an_image.json()["error"]["message"].startswith("image 0: ")
    spans = exporter.get_finished_spans()
    [server] = _named(spans, "POST /sentiment")
    assert failed.headers["x-trace-id"] == _hex(server.context.trace_id)
    assert not server.status.is_ok
    [call] = _named(spans, "model call")
    assert not call.status.is_ok and call.events and call.events[0].name == "exception"
    assert _named(spans, "GET unmatched") and unknown.headers["x-trace-id"]


async def test_tracing_is_off_unless_an_exporter_is_named(make_settings: Callable[..., Settings]) -> None:
    # OpenTelemetry's SDK is installed here (the test imports it), yet nothing turns tracing on.
    for environ in ({}, {"OTEL_TRACES_EXPORTER": "none"},
                    {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}):
        tracing = tracing_from_environment(environ)
        assert not tracing.enabled and type(tracing) is Tracing, environ
    app = create_app(make_settings())
    async with serving(app) as http:
        response = await http.post("/sentiment", json={"text": "good"})
    assert response.status_code == 200 and "x-trace-id" not in response.headers


def test_the_otel_variables_are_checked() -> None:
    assert exporters_from({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp", "console"]
    with pytest.raises(TracingConfigError, match="unknown exporter 'zipkin'"):
        exporters_from({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(TracingConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        exporters_from({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_the_exporters_are_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "serving-under-test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")  # never reached: nothing is exported
    tracing = tracing_from_environment({"OTEL_TRACES_EXPORTER": "otlp,console"})
    assert tracing is not None
    try:
        assert tracing.provider.resource.attributes["service.name"] == "serving-under-test"
        exporters = [type(p.span_exporter).__name__ for p in tracing.provider._active_span_processor._span_processors]  # type: ignore[attr-defined]
        assert exporters == ["OTLPSpanExporter", "ConsoleSpanExporter"]
    finally:
        tracing.shutdown()


async def test_a_global_opentelemetry_provider_adds_no_spans_of_its_own(
    make_settings: Callable[..., Settings], exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Something else in the process (Ray, opentelemetry-instrument) may set a global provider; FastAPI's
    # own telemetry would then trace every request a second time, beside (or without) the service's.
    from opentelemetry import trace

    global_exporter = InMemorySpanExporter()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", _provider(global_exporter))  # restored after the test
    app = create_app(make_settings(), tracer_provider=_provider(exporter))
    async with serving(app) as http:
        response = await http.post("/sentiment", json={"text": "good"})
    assert response.status_code == 200
    assert _named(exporter.get_finished_spans(), "POST /sentiment")
    assert global_exporter.get_finished_spans() == ()
