"""Prediction monitoring on its own: the sliding window, binning, PSI, the
reference's shape, and a version's monitor fed batches directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import generate_latest

from contract.monitoring import CONFIDENCE_EDGES, bin_index, histogram_share, psi, reference_of
from service.core.metrics import Metrics
from service.core.monitoring import SlidingCounts, VersionMonitor

LABELS = ["negative", "positive"]


def test_the_sliding_window_counts_exactly_the_last_n_observations() -> None:
    rng = np.random.default_rng(7)
    window = SlidingCounts(50, bins=4)
    seen: list[int] = []
    for size in [1, 3, 49, 50, 2, 120, 7, 0, 31, 13, 50, 1]:  # batches smaller, equal to and larger than it
        batch = rng.integers(0, 4, size)
        window.add(batch)
        seen.extend(batch.tolist())
        expected = np.bincount(np.array(seen[-50:], dtype=int), minlength=4)
        assert window.counts.tolist() == expected.tolist(), size
        assert window.filled == min(50, len(seen))


def test_bins_are_half_open_the_last_one_closed_and_outliers_go_to_the_outer_bins() -> None:
    edges = np.array([0.0, 10.0, 20.0, math.inf])
    assert bin_index(np.array([-5, 0, 9.99, 10, 19, 20, 1e9]), edges).tolist() == [0, 0, 0, 1, 1, 2, 2]
    confidence = np.array(CONFIDENCE_EDGES)
    assert bin_index(np.array([0.0, 0.1, 0.95, 1.0]), confidence).tolist() == [0, 1, 9, 9]
    assert histogram_share([1, 2, 15, 1000], [0, 10, 20, None]) == [0.5, 0.25, 0.25]


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift() -> None:
    reference = np.array([0.5, 0.3, 0.2])
    assert psi(reference * 1000, reference) == pytest.approx(0.0)
    small, large = psi(np.array([0.45, 0.33, 0.22]), reference), psi(np.array([0.9, 0.05, 0.05]), reference)
    assert 0 < small < 0.1 < 0.25 < large
    # An empty bin counts as a tiny share, so the score stays finite.
    assert math.isfinite(psi(np.array([1.0, 0.0, 0.0]), reference))


def _reference(**changes: object) -> dict:
    reference = {
        "split": "test",
        "predicted_label_share": {"negative": 0.5, "positive": 0.5},
        "top1_probability": {"edges": list(CONFIDENCE_EDGES), "share": [0, 0, 0, 0, 0, 0.2, 0.2, 0.2, 0.2, 0.2]},
        "input": {"text_length_chars": {"edges": [0, 10, 100, None], "share": [0.2, 0.7, 0.1]}},
    }
    return reference | changes


def test_a_card_without_a_reference_has_none_and_a_malformed_one_says_what_is_wrong() -> None:
    assert reference_of(None) is None
    assert reference_of({"monitoring": {}}) is None
    assert reference_of({"monitoring": {"reference": _reference()}}).split == "test"  # type: ignore[union-attr]
    bad_share = _reference(predicted_label_share={"negative": 0.5, "positive": 0.7})
    with pytest.raises(ValueError, match="add up to 1"):
        reference_of({"monitoring": {"reference": bad_share}})
    bad_edges = _reference(top1_probability={"edges": [0, None, 1], "share": [0.5, 0.5]})
    with pytest.raises(ValueError, match="only the last edge"):
        reference_of({"monitoring": {"reference": bad_edges}})


def _monitor(card_extra: dict | None, window: int = 100) -> tuple[VersionMonitor, Metrics]:
    metrics = Metrics()
    return VersionMonitor("m", 1, LABELS, card_extra, window, 0.25, metrics.for_monitor("m", 1, LABELS)), metrics


def _outputs(positive: np.ndarray) -> np.ndarray:
    return np.stack([1 - positive, positive], axis=1).astype(np.float32)


def test_a_monitor_scores_its_window_once_full_and_flags_a_shift() -> None:
    monitor, metrics = _monitor({"monitoring": {"reference": _reference()}})
    rng = np.random.default_rng(1)

    def like_the_reference(n: int) -> tuple[np.ndarray, list[dict[str, list[float]]]]:
        confidence = rng.uniform(0.5, 1.0, n)
        positive = np.where(rng.random(n) < 0.5, confidence, 1 - confidence)
        lengths = rng.choice([5, 50, 500], size=n, p=[0.2, 0.7, 0.1]).tolist()
        return _outputs(positive), [{"text_length_chars": lengths}]

    monitor.observe(*like_the_reference(60))
    assert monitor.describe()["drift"] == {"predicted_label": None, "confidence": None, "text_length_chars": None}
    for _ in range(4):
        monitor.observe(*like_the_reference(60))
    described = monitor.describe()
    assert described["predictions_in_window"] == 100 and described["drifting"] == []
    assert all(score < 0.25 for score in described["drift"].values()), described

    monitor.observe(_outputs(np.full(100, 0.02)), [{"text_length_chars": [3000] * 100}])  # only negatives, long
    described = monitor.describe()
    assert described["drifting"] == ["confidence", "predicted_label", "text_length_chars"], described
    text = generate_latest(metrics.registry).decode()
    assert 'service_predictions_total{label="negative",model="m",version="1"}' in text
    assert 'service_input_text_length_chars_count{model="m",version="1"} 400.0' in text
    assert "service_input_image_width_pixels_count" not in text  # a text model shows no image sizes


def test_without_a_reference_there_are_metrics_but_no_score() -> None:
    monitor, metrics = _monitor(None, window=10)
    monitor.observe(_outputs(np.linspace(0, 1, 30)), [])
    assert monitor.describe()["drift"] == {} and monitor.describe()["reference_split"] is None
    assert monitor.scored_signals == ()
    text = generate_latest(metrics.registry).decode()
    assert 'service_prediction_confidence_count{model="m",version="1"} 30.0' in text
    assert "service_prediction_drift{" not in text


def test_a_malformed_reference_costs_the_score_not_the_model(caplog: pytest.LogCaptureFixture) -> None:
    monitor, _ = _monitor({"monitoring": {"reference": {"split": "test"}}})
    assert monitor.reference is None and "malformed monitoring reference" in caplog.text
