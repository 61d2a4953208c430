"""The drift reference: bucket rules, JSON shape, and what goes in for text and images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.monitoring import TEXT_LENGTH_EDGES, TOP1_EDGES, histogram, reference


def test_buckets_are_right_open_and_the_top_edge_is_inclusive() -> None:
    result = histogram([0.0, 0.1, 0.15, 0.999, 1.0], TOP1_EDGES)
    assert result["edges"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert result["share"] == [0.2, 0.4, 0, 0, 0, 0, 0, 0, 0, 0.4]


def test_an_open_last_bucket_is_null_in_json_and_takes_anything_large() -> None:
    result = histogram([0, 19, 20, 4999, 5000, 10**9], TEXT_LENGTH_EDGES)
    assert result["edges"] == [0, 20, 50, 100, 200, 500, 1000, 2000, 5000, None]
    assert len(result["share"]) == 9 and sum(result["share"]) == pytest.approx(1.0)
    assert result["share"][0] == pytest.approx(2 / 6) and result["share"][-1] == pytest.approx(2 / 6)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    with pytest.raises(ValueError, match="below the first edge"):
        histogram([-1], TEXT_LENGTH_EDGES)


def test_text_reference_has_every_label_and_the_length_buckets() -> None:
    probabilities = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.34, 0.33, 0.33]])
    summary = reference(probabilities, ["neg", "neu", "pos"], "test", text_lengths=[5, 30, 30, 700])
    assert summary["count"] == 4 and summary["split"] == "test"
    assert summary["predicted_label_share"] == {"neg": 0.75, "neu": 0.25, "pos": 0.0}
    assert summary["top1_probability"]["share"][9] == 0.25 and summary["top1_probability"]["share"][3] == 0.25
    lengths = summary["input"]["text_length_chars"]
    assert lengths["share"][:6] == [0.25, 0.5, 0, 0, 0, 0.25]
    assert "image_width" not in summary["input"]
    json.dumps(summary, allow_nan=False)


def test_image_reference_buckets_width_and_height_separately() -> None:
    probabilities = np.tile([[0.1, 0.9]], (4, 1))
    sizes = np.array([[32, 32], [32, 32], [480, 640], [20, 30]])  # (height, width)
    summary = reference(probabilities, ["a", "b"], "test", image_sizes=sizes)
    assert summary["input"]["image_width"]["share"][:7] == [0, 0.25, 0.5, 0, 0, 0, 0.25]
    assert summary["input"]["image_height"]["share"][:7] == [0, 0.25, 0.5, 0, 0, 0.25, 0]
    assert "input" not in reference(probabilities, ["a", "b"], "test")


def test_probabilities_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="3 labels"):
        reference(np.ones((2, 2)) / 2, ["a", "b", "c"], "test")
