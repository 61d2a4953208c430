"""Whether to trace, from the standard OTEL_* variables; imports OpenTelemetry only when tracing is on.

Tracing is on when OTEL_TRACES_EXPORTER names an exporter other than `none` (`otlp`, `console`,
or both, comma-separated) and OTEL_SDK_DISABLED is not `true`. Having the SDK installed is not
enough (Ray brings it along): without the variable the service makes no spans and does nothing
per request beyond checking that it has no tracer. The spans themselves are in service.core.spans.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.core.spans import Tracing

EXPORTERS = ("otlp", "console")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something the service cannot do; the message says what to change."""


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


def tracing_from_environment(environ: Mapping[str, str] | None = None) -> Tracing | None:
    """A Tracing set up as the OTEL_* variables say, or None when tracing is off."""
    environ = os.environ if environ is None else environ
    names = exporters_from(environ)
    if not names:
        return None
    try:
        from service.core.spans import Tracing
    except ImportError as exc:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={environ['OTEL_TRACES_EXPORTER']!r} needs OpenTelemetry's SDK: "
            f"pip install -e '.[otel]' ({exc})"
        ) from None
    try:
        return Tracing.from_exporters(names, otlp_protocol=_otlp_protocol(environ))
    except ImportError as exc:
        raise TracingConfigError(
            f"the {_otlp_protocol(environ)} OTLP exporter is not installed: pip install -e '.[otel]' "
            f"(grpc also needs opentelemetry-exporter-otlp-proto-grpc) ({exc})"
        ) from None
