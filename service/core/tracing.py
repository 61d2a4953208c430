"""The tracer the service calls, and whether to trace, from the standard OTEL_* variables.

`Tracing` here is the tracer with tracing off: every method does nothing, so the code that
traces has no "is tracing on?" branches. `tracing_from_environment` returns it, or the
OpenTelemetry tracer (service.core.otel, imported only then) when OTEL_TRACES_EXPORTER names
an exporter other than `none` (`otlp`, `console`, or both, comma-separated) and
OTEL_SDK_DISABLED is not `true`. Having the SDK installed is not enough (Ray brings it along).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

EXPORTERS = ("otlp", "console")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")

_NOTHING = nullcontext()  # reusable: entering it does nothing


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something the service cannot do; the message says what to change."""


class RequestTrace:
    """One HTTP request's trace (its server span); untraced here."""

    trace_id: str | None = None

    def record_exception(self, exc: BaseException) -> None:
        """The request ended in an exception."""

    def end(self, route: str, status: int, request_id: str, answered: Mapping[bytes, bytes]) -> None:
        """The request is answered: `answered` holds the answer's X-Model* and X-Batch-Size headers."""


class BatchTracing:
    """The batch spans of one model version's batcher; none here."""

    def current(self) -> Any:
        """The current request's span context, which a queued piece remembers (None: not traced)."""
        return None

    def start_batch(self, members: Sequence[tuple[Any, float, int]], started: float, size: int) -> Any:
        """The batch's span, or None when no member is traced (the batcher then makes no other span)."""
        return None

    def start_model_call(self, batch: Any) -> Any:
        raise AssertionError("no batch span, so no model call span")

    def failed(self, span: Any, exc: BaseException) -> None:
        raise AssertionError("no batch span, so nothing to fail")


_UNTRACED_REQUEST = RequestTrace()
_UNTRACED_BATCHES = BatchTracing()


class Tracing:
    """The tracer with tracing off."""

    enabled = False

    def start_request(self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]]) -> RequestTrace:
        return _UNTRACED_REQUEST

    def span(self, name: str, **attributes: Any) -> AbstractContextManager[Any]:
        """A child span of the current one, for a step of a request (decoding an image, say)."""
        return _NOTHING

    def for_batcher(self, model: str, version: int) -> BatchTracing:
        return _UNTRACED_BATCHES

    def shutdown(self) -> None:
        """Flush what is waiting for export."""


def exporters_from(environ: Mapping[str, str]) -> list[str]:
    """The exporters asked for: [] when tracing is off. Raises TracingConfigError for an unknown one."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    names = [name for name in names if name != "none"]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']!r}: unknown exporter {unknown[0]!r}; "
            f"use {', '.join(EXPORTERS)} or none (comma-separated for several)"
        )
    if "otlp" in names:
        protocol = _otlp_protocol(environ)
        if protocol not in OTLP_PROTOCOLS:
            raise TracingConfigError(
                f"OTLP protocol {protocol!r} is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL to "
                f"{' or '.join(OTLP_PROTOCOLS)}"
            )
    return names


def _otlp_protocol(environ: Mapping[str, str]) -> str:
    return (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf").strip().lower()


def tracing_from_environment(environ: Mapping[str, str] | None = None) -> Tracing:
    """The tracer the OTEL_* variables ask for; the one that does nothing when tracing is off."""
    environ = os.environ if environ is None else environ
    names = exporters_from(environ)
    if not names:
        return Tracing()
    try:
        from service.core.otel import OpenTelemetryTracing
    except ImportError as exc:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']!r} needs OpenTelemetry's SDK: "
            f"install the otel extra, e.g. make deps ({exc})"
        ) from None
    try:
        return OpenTelemetryTracing.from_exporters(names, otlp_protocol=_otlp_protocol(environ))
    except ImportError as exc:
        raise TracingConfigError(
            f"the {_otlp_protocol(environ)} OTLP exporter is not installed: install the otel extra, e.g. make deps "
            f"(grpc also needs opentelemetry-exporter-otlp-proto-grpc) ({exc})"
        ) from None


