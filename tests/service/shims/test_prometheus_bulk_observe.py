"""observe_many: a batch of observations lands in a histogram exactly as one `observe` per value would."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.core.metrics import Metrics
from service.shims.prometheus_bulk_observe import observe_many

VALUES = np.array([0.05, 0.1, 0.10001, 0.5, 0.99, 1.0, 1.0, 3.0, 0.0, 0.3])


def _samples(registry: CollectorRegistry) -> list[str]:  # without the `_created` timestamps, which differ
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_many_observations_at_once_count_as_one_at_a_time() -> None:
    one_by_one, at_once = Metrics(), Metrics()
    for value in VALUES:
        one_by_one.prediction_confidence.labels("m", "1").observe(float(value))
    observe_many(at_once.prediction_confidence.labels("m", "1"), VALUES)
    assert _samples(at_once.registry) == _samples(one_by_one.registry)
    assert 'service_prediction_confidence_bucket{le="0.1",model="m",version="1"} 3.0' in _samples(at_once.registry)


def test_a_histogram_without_the_expected_internals_is_observed_one_value_at_a_time() -> None:
    class Recorder:  # what a release that stores its buckets differently would look like to the shim
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    recorder = Recorder()
    observe_many(recorder, VALUES)
    assert recorder.seen == VALUES.tolist()


def test_an_unlabelled_histogram_takes_a_batch_too() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h", "a histogram", buckets=(0.5, 1.0), registry=registry)
    observe_many(histogram, VALUES)
    assert 'h_bucket{le="0.5"} 6.0' in _samples(registry) and 'h_bucket{le="1.0"} 9.0' in _samples(registry)
    assert 'h_count 10.0' in _samples(registry)
