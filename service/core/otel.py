"""The service's spans, with OpenTelemetry. Imported only when tracing is on (service.core.tracing).

One request's trace:

    POST /classify-image                 server span; continues an incoming W3C traceparent
    ├── decode image                     one per image (image routes), decode request (v2 routes)
    ├── queue wait                       one per piece of the request, from queued to taken into a batch;
    │                                    links to the batch span
    └── batch                            the model call its rows shared (in the first sampled member's
        └── model call                   trace only); links to every member request's server span

A batch serves many requests but a span has one parent, so the batch span is the child of the
first member whose trace is sampled (that trace shows where the model call went, and any
sampler keeps it since its parent is kept), and it links to every member's server span; every
member's `queue wait` span links back to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode

from service.core.tracing import BatchTracing, RequestTrace, Tracing

SERVICE_NAME = "model-serving"
TRACER_NAME = "service"


class OpenTelemetryTracing(Tracing):
    """A tracer provider and what the service does with it: request spans, spans in requests, batch spans."""

    enabled = True

    def __init__(self, provider: TracerProvider, *, owned: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(TRACER_NAME)
        self._owned = owned  # shut down (flushing its exporters) with the app only if built here
        self._propagator = propagate.get_global_textmap()  # W3C traceparent (OTEL_PROPAGATORS may add)
        self._fields = {name.encode("latin-1") for name in self._propagator.fields}
        # The batcher times with the monotonic clock; spans want wall-clock nanoseconds.
        self._wall_offset_ns = time.time_ns() - time.monotonic_ns()

    @classmethod
    def from_exporters(cls, names: Sequence[str], otlp_protocol: str = "http/protobuf") -> OpenTelemetryTracing:
        """A provider as the OTEL_* variables describe it: the SDK itself reads the service name and
        resource attributes, the sampler (OTEL_TRACES_SAMPLER, _ARG), the OTLP endpoint, headers and
        timeout, and the batch processor's limits (OTEL_BSP_*)."""
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
        provider = TracerProvider(resource=resource)
        for name in names:
            exporter: SpanExporter
            if name == "console":
                exporter = ConsoleSpanExporter()
            elif otlp_protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                    OTLPSpanExporter as GrpcExporter,
                )
                exporter = GrpcExporter()
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter()
            # Spans are exported from a thread of the processor's, never on the event loop.
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, owned=True)

    def shutdown(self) -> None:
        if self._owned:
            self.provider.shutdown()

    def wall_ns(self, monotonic_s: float) -> int:
        return int(monotonic_s * 1e9) + self._wall_offset_ns

    def start_request(self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]]) -> RequestTrace:
        """The server span, continuing the caller's trace when it sent one, made current until it ends."""
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers if name in self._fields}
        parent = self._propagator.extract(carrier) if carrier else None
        span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER,
                                      attributes={"http.request.method": method, "url.path": path})
        return _ServerSpan(span, method, context.attach(trace.set_span_in_context(span)))

    @contextmanager
    def _child(self, name: str, attributes: dict[str, Any]) -> Iterator[Span]:
        with self.tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span

    def span(self, name: str, **attributes: Any) -> Any:
        return self._child(name, attributes)

    def for_batcher(self, model: str, version: int) -> BatchTracing:
        return _BatchSpans(self, {"model.name": model, "model.version": version})


class _ServerSpan(RequestTrace):
    def __init__(self, span: Span, method: str, token: object) -> None:
        self._span = span
        self._method = method
        self._token = token
        self.trace_id = format(span.get_span_context().trace_id, "032x")

    def record_exception(self, exc: BaseException) -> None:
        self._span.record_exception(exc)

    def end(self, route: str, status: int, request_id: str, answered: Mapping[bytes, bytes]) -> None:
        context.detach(self._token)  # type: ignore[arg-type]  # the token attach returned
        span = self._span
        if span.is_recording():
            span.update_name(f"{self._method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("request.id", request_id)
            model = answered.get(b"x-model", b"").decode("latin-1")
            if model:
                span.set_attribute("model.name", model)
                version = answered.get(b"x-model-version", b"").decode("latin-1")
                span.set_attribute("model.version", int(version) if version.isdigit() else version)  # as on batches
            batch_size = answered.get(b"x-batch-size", b"").decode("latin-1")
            if batch_size.isdigit():
                span.set_attribute("batch.size", int(batch_size))
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()


class _BatchSpans(BatchTracing):
    """The batch spans of one model version's batcher."""

    def __init__(self, tracing: OpenTelemetryTracing, attributes: dict[str, Any]) -> None:
        self._tracing = tracing
        self._tracer = tracing.tracer
        self._attributes = attributes

    def current(self) -> SpanContext | None:
        span_context = trace.get_current_span().get_span_context()
        return span_context if span_context.is_valid else None

    def start_batch(self, members: Sequence[tuple[SpanContext | None, float, int]], started: float,
                    size: int) -> Span | None:
        """The batch span, and each sampled member's `queue wait` span (ended now, at `started`).

        `members` holds each piece's request span context (None: not traced), when it was queued
        (monotonic seconds) and its rows. None when no member's trace is sampled: nothing to record.
        """
        sampled = [(span_context, queued, rows) for span_context, queued, rows in members
                   if span_context is not None and span_context.trace_flags.sampled]
        if not sampled:
            return None
        start_ns = self._tracing.wall_ns(started)
        links = [Link(span_context) for span_context, _, _ in members if span_context is not None]
        batch = self._tracer.start_span(
            "batch", context=trace.set_span_in_context(NonRecordingSpan(sampled[0][0])), links=links,
            start_time=start_ns,
            attributes={**self._attributes, "batch.size": size, "batch.requests": len(members)},
        )
        to_batch = [Link(batch.get_span_context())]
        for span_context, queued, rows in sampled:
            wait = self._tracer.start_span(
                "queue wait", context=trace.set_span_in_context(NonRecordingSpan(span_context)), links=to_batch,
                start_time=self._tracing.wall_ns(queued),
                attributes={**self._attributes, "batch.size": size, "rows": rows},
            )
            wait.end(end_time=start_ns)
        return batch

    def start_model_call(self, batch: Span) -> Span:
        return self._tracer.start_span("model call", context=trace.set_span_in_context(batch),
                                       attributes=self._attributes)

    def failed(self, span: Span, exc: BaseException) -> None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
