"""Prometheus metrics. Every label value is bounded: route templates, model names, versions.

With several worker processes (service.core.workers), prometheus-client writes each
process's values to files in the shared folder and `exposition` adds them up; gauges say
how (queue depths add up, a version counts as loaded if any live process has it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from service.core.workers import shared_dir

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TEXT_LENGTH_BUCKETS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
IMAGE_SIDE_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


@dataclass(frozen=True)
class BatcherMetrics:
    """The metrics of one model version's batcher, already labelled."""

    queue_wait: Any
    batch_size: Any
    inference: Any
    queue_depth: Any


@dataclass(frozen=True)
class MonitorMetrics:
    """The prediction metrics of one model version, already labelled (service.core.monitoring)."""

    predictions: list[Any]  # one counter child per label, in the card's label order
    confidence: Any
    inputs: Callable[[str], Any]  # input signal -> its histogram child (made on first use)
    drift: Callable[[str], Any]  # signal -> gauge child


class Metrics:
    """All of the service's metrics, in a registry of their own (one per app, so tests stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "service_requests_total", "HTTP requests answered.", ["route", "model", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "service_request_duration_seconds", "Time from request to response.", ["route", "model"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        version_labels = ["model", "version"]
        self.queue_wait = Histogram(
            "service_batch_queue_wait_seconds", "Time an input waited in the queue for its batch.",
            version_labels, buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.batch_size = Histogram(
            "service_batch_size", "Inputs per model call.", version_labels,
            buckets=BATCH_BUCKETS, registry=self.registry,
        )
        self.inference = Histogram(
            "service_model_inference_seconds", "Duration of one model call.", version_labels,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.queue_depth = Gauge(
            "service_batch_queue_depth", "Inputs waiting for a batch.", version_labels, registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.model_loaded = Gauge(
            "service_model_version_loaded", "1 for each model version loaded and serving.", version_labels,
            registry=self.registry, multiprocess_mode="livemax",
        )
        # An info metric: which runtime (service.core.runtimes) runs each loaded version, 1 while it does.
        self.model_runtime = Gauge(
            "service_model_runtime_info", "1 for the runtime each loaded model version runs on.",
            [*version_labels, "runtime"], registry=self.registry, multiprocess_mode="livemax",
        )

        # Prediction monitoring (service.core.monitoring): what each version predicts, and on what.
        self.predictions = Counter(
            "service_predictions_total", "Predictions made, by predicted (top-1) label.", [*version_labels, "label"],
            registry=self.registry,
        )
        self.prediction_confidence = Histogram(
            "service_prediction_confidence", "Top-1 probability of each prediction.", version_labels,
            buckets=CONFIDENCE_BUCKETS, registry=self.registry,
        )
        self.input_text_length = Histogram(
            "service_input_text_length_chars", "Length of each input text, in characters.", version_labels,
            buckets=TEXT_LENGTH_BUCKETS, registry=self.registry,
        )
        self.input_image_width = Histogram(
            "service_input_image_width_pixels", "Width of each input image as uploaded, before resizing.",
            version_labels, buckets=IMAGE_SIDE_BUCKETS, registry=self.registry,
        )
        self.input_image_height = Histogram(
            "service_input_image_height_pixels", "Height of each input image as uploaded, before resizing.",
            version_labels, buckets=IMAGE_SIDE_BUCKETS, registry=self.registry,
        )
        # With several worker processes each keeps its own window: the worst score of the live ones counts.
        self.prediction_drift = Gauge(
            "service_prediction_drift",
            "Population stability index of a signal over the recent window against the card's reference.",
            [*version_labels, "signal"], registry=self.registry, multiprocess_mode="livemax",
        )

        # Rollouts (service.rollout): shadow copies, and candidates taken out of traffic or promoted.
        self.shadow_copies = Counter(
            "service_rollout_shadow_copies_total",
            "Shadow copies of requests for a candidate, by outcome: compared, failed, or dropped (queue full).",
            ["model", "version", "outcome"], registry=self.registry,
        )
        self.rollbacks = Counter(
            "service_rollout_rollbacks_total", "Candidates this process took out of traffic, by the gate that failed.",
            ["model", "version", "gate"], registry=self.registry,
        )
        self.promotions = Counter(
            "service_rollout_promotions_total", "Candidates this process made stable (automatic promotion).",
            ["model", "version"], registry=self.registry,
        )
        # From the policy file, which every process reads: 1 while it records a rollback of its candidate.
        self.rolled_back = Gauge(
            "service_rollout_rolled_back", "1 while the model's rollout policy records a rolled-back candidate.",
            ["model"], registry=self.registry, multiprocess_mode="livemax",
        )
        # The payload log (service.payloads): records written, and records lost, by why.
        self.payload_log_written = Counter(
            "service_payload_log_records_total", "Payload log records written.", registry=self.registry,
        )
        self.payload_log_dropped = Counter(
            "service_payload_log_dropped_total",
            "Payload log records lost: the queue was full (queue_full) or the file could not be written (write_error).",
            ["reason"], registry=self.registry,
        )

        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.load_failures = Counter(
            "service_model_load_failures_total", "Model versions that failed to load.", ["model"],
            registry=self.registry,
        )

    def version_retired(self, model: str, version: int, runtime: str, drift_signals: tuple[str, ...] = ()) -> None:
        """A retired version's gauges go (a stale drift score would go on alerting); counters stay."""
        if shared_dir() is None:
            self.model_loaded.remove(model, str(version))
            self.model_runtime.remove(model, str(version), runtime)
            for signal in drift_signals:
                self.prediction_drift.remove(model, str(version), signal)
        else:  # a process's file keeps every series it wrote: say 0 instead
            self.model_loaded.labels(model, str(version)).set(0)
            self.model_runtime.labels(model, str(version), runtime).set(0)
            for signal in drift_signals:
                self.prediction_drift.labels(model, str(version), signal).set(0)

    def exposition(self) -> tuple[bytes, str]:
        """The text /metrics answers: this process's metrics, or every worker process's, added up."""
        folder = shared_dir()
        if folder is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=str(folder))
        return generate_latest(combined), CONTENT_TYPE_LATEST

    def count_request(self, route: str, model: str, status: int, seconds: float) -> None:
        """One answered request. The labelled children are kept: looking them up costs more than counting."""
        key = (route, model, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(route, model, str(status)), self.request_latency.labels(route, model))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def for_batcher(self, model: str, version: int) -> BatcherMetrics:
        labels = {"model": model, "version": str(version)}
        return BatcherMetrics(
            queue_wait=self.queue_wait.labels(**labels),
            batch_size=self.batch_size.labels(**labels),
            inference=self.inference.labels(**labels),
            queue_depth=self.queue_depth.labels(**labels),
        )

    def for_monitor(self, model: str, version: int, labels: list[str]) -> MonitorMetrics:
        values = (model, str(version))
        families = {"text_length_chars": self.input_text_length, "image_width": self.input_image_width,
                    "image_height": self.input_image_height}
        return MonitorMetrics(
            predictions=[self.predictions.labels(*values, label) for label in labels],
            confidence=self.prediction_confidence.labels(*values),
            inputs=lambda signal: families[signal].labels(*values),
            drift=lambda signal: self.prediction_drift.labels(*values, signal),
        )
