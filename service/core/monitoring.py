"""Prediction monitoring and drift, per loaded model version.

Each version's batcher hands every batch's outputs (and the input summaries its requests
brought: text lengths, image sizes measured at decode) to the version's `VersionMonitor`,
once per batch, on the event loop once its callers have their answers. The monitor updates
the Prometheus metrics in bulk and keeps a sliding window of the last `window` predictions
and inputs as bin counts; against the card's monitoring reference (contract.monitoring) it
scores each signal with the population stability index and publishes the scores as
`service_prediction_drift{model,version,signal}`.

Nothing of a text or an image is kept: only the bin each one fell into.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contract.monitoring import bin_index, psi, reference_of
from service.core.metrics import MonitorMetrics
from service.shims.prometheus_bulk_observe import observe_many

log = logging.getLogger("service.monitoring")

PREDICTED_LABEL = "predicted_label"
CONFIDENCE = "confidence"
# The input summaries, by the name both the card's reference and the drift gauge's `signal` use.
TEXT_LENGTH = "text_length_chars"
IMAGE_WIDTH = "image_width"
IMAGE_HEIGHT = "image_height"
INPUT_SIGNALS = (TEXT_LENGTH, IMAGE_WIDTH, IMAGE_HEIGHT)

# Scores are recomputed at most this often: a handful of tiny numpy operations, but per batch
# at thousands of requests a second they would add up for nothing a scrape could see.
REFRESH_S = 1.0

InputSummary = Mapping[str, Sequence[float]]


class SlidingCounts:
    """The bin of each of the last `size` observations, and how many of them fall in each bin.

    Updating costs a few array operations per batch, whatever the window's size.
    """

    def __init__(self, size: int, bins: int) -> None:
        self.size = size
        self._ring = np.zeros(size, dtype=np.int32)
        self.counts = np.zeros(bins, dtype=np.int64)
        self._next = 0
        self.filled = 0

    def add(self, index: np.ndarray) -> None:
        bins = len(self.counts)
        if len(index) >= self.size:  # the batch alone fills the window
            self._ring[:] = index[-self.size :]
            self.counts = np.bincount(self._ring, minlength=bins).astype(np.int64)
            self._next, self.filled = 0, self.size
            return
        places = (self._next + np.arange(len(index))) % self.size
        replaced = places[places < self.filled]  # places still empty replace nothing
        if len(replaced):
            self.counts -= np.bincount(self._ring[replaced], minlength=bins)
        self._ring[places] = index
        self.counts += np.bincount(index, minlength=bins)
        self._next = (self._next + len(index)) % self.size
        self.filled = min(self.size, self.filled + len(index))

    @property
    def full(self) -> bool:
        return self.filled == self.size


class _Signal:
    """One monitored quantity: its live window and, when the card has one, its reference shares."""

    def __init__(self, name: str, edges: np.ndarray | None, reference: np.ndarray | None, bins: int,
                 window: int) -> None:
        self.name = name
        self.edges = edges  # None: the values are already bin indices (predicted labels)
        self.reference = reference
        self.window = SlidingCounts(window, bins)

    def add(self, values: np.ndarray) -> None:
        self.window.add(values if self.edges is None else bin_index(values, self.edges))

    def score(self) -> float | None:
        """PSI of the window against the reference, once the window is full; None before or without one."""
        if self.reference is None or not self.window.full:
            return None
        return psi(self.window.counts, self.reference)


class VersionMonitor:
    """What one model version has been predicting, and how far that is from its card's reference."""

    def __init__(self, name: str, version: int, labels: list[str], card_extra: Mapping[str, Any] | None,
                 window: int, threshold: float, metrics: MonitorMetrics) -> None:
        self.name, self.version = name, version
        self.window, self.threshold = window, threshold
        self._metrics = metrics
        self._lock = threading.Lock()  # batches of one version may finish on several model threads
        self._refreshed = 0.0
        try:
            self.reference = reference_of(card_extra)
        except ValueError as exc:  # a bad reference costs the drift score, never the model
            log.warning("%s version %d: %s; no drift score", name, version, exc)
            self.reference = None
        self._labels = _Signal(PREDICTED_LABEL, None, self._label_reference(labels), len(labels), window)
        confidence_edges = (self.reference.top1_probability.finite_edges if self.reference
                            else np.linspace(0.0, 1.0, 11))
        confidence_reference = np.array(self.reference.top1_probability.share) if self.reference else None
        self._confidence = _Signal(CONFIDENCE, confidence_edges, confidence_reference, len(confidence_edges) - 1,
                                   window)
        self._inputs: dict[str, _Signal] = {}
        self._input_histograms: dict[str, Any] = {}
        for signal in INPUT_SIGNALS:
            histogram = self.reference.input.get(signal) if self.reference else None
            if histogram is not None:
                self._inputs[signal] = _Signal(signal, histogram.finite_edges, np.array(histogram.share),
                                               len(histogram.share), window)

    def _label_reference(self, labels: list[str]) -> np.ndarray | None:
        if self.reference is None:
            return None
        shares = self.reference.predicted_label_share
        unknown = set(shares) - set(labels)
        if unknown:
            log.warning("%s version %d: the reference's labels %s are not the card's; no predicted-label score",
                        self.name, self.version, sorted(unknown))
            return None
        return np.array([shares.get(label, 0.0) for label in labels])

    # -- per batch, on the event loop --------------------------------------------------------------

    def observe(self, outputs: np.ndarray, inputs: Sequence[InputSummary]) -> None:
        """One batch: its output rows (probabilities) and the input summaries its requests carried."""
        predicted = outputs.argmax(axis=1)
        confidence = outputs.max(axis=1).astype(np.float64)
        metrics = self._metrics
        counts = np.bincount(predicted, minlength=len(metrics.predictions))
        for label_index in np.flatnonzero(counts).tolist():  # only the labels this batch predicted
            metrics.predictions[label_index].inc(int(counts[label_index]))
        observe_many(metrics.confidence, confidence)
        summaries = {signal: np.array([v for summary in inputs for v in summary.get(signal, ())], dtype=np.float64)
                     for signal in INPUT_SIGNALS if any(signal in summary for summary in inputs)}
        for signal, values in summaries.items():
            histogram = self._input_histograms.get(signal)
            if histogram is None:  # made on first use, so a text model shows no image-size series
                histogram = self._input_histograms[signal] = metrics.inputs(signal)
            observe_many(histogram, values)
        with self._lock:
            self._labels.add(predicted)
            self._confidence.add(confidence)
            for signal, values in summaries.items():
                if signal in self._inputs:
                    self._inputs[signal].add(values)
            now = time.monotonic()
            if now - self._refreshed >= REFRESH_S:
                self._refreshed = now
                self._publish()

    def _signals(self) -> list[_Signal]:
        return [self._labels, self._confidence, *self._inputs.values()]

    def _publish(self) -> None:
        for signal in self._signals():
            score = signal.score()
            if score is not None:
                self._metrics.drift(signal.name).set(score)

    # -- reading ----------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The scores as of now (not the last published ones), for GET /models/{name}."""
        with self._lock:
            scores = {signal.name: signal.score() for signal in self._signals() if signal.reference is not None}
            filled = self._labels.window.filled
        return {
            "window": self.window,
            "predictions_in_window": filled,
            "reference_split": self.reference.split if self.reference else None,
            "threshold": self.threshold,
            "drift": {name: None if score is None else round(score, 6) for name, score in scores.items()},
            "drifting": sorted(name for name, score in scores.items() if score is not None and score > self.threshold),
        }

    @property
    def scored_signals(self) -> tuple[str, ...]:
        """The signals that get a drift score (those the reference covers)."""
        return tuple(signal.name for signal in self._signals() if signal.reference is not None)
