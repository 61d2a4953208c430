"""Temperature scaling and ECE on synthetic answers whose calibration is known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.calibration import (
    TemperatureScaling,
    apply_temperature,
    calibration_card,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    plot_reliability,
    reliability,
    with_temperature,
)
from training.common import export_saved_model


def calibrated_answers(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities drawn at random, then labels drawn from those very probabilities:
    calibrated by construction, so a 0.8 is right 80% of the time."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in probabilities])
    return probabilities, labels


def overconfident(probabilities: np.ndarray, sharpen: float = 3.0) -> np.ndarray:
    """The same answers made over-confident: logits multiplied by `sharpen` (a temperature of 1/3)."""
    return apply_temperature(probabilities, 1.0 / sharpen)


def test_ece_of_calibrated_answers_is_near_zero() -> None:
    probabilities, labels = calibrated_answers(20_000, 4, seed=0)
    assert expected_calibration_error(probabilities, labels) < 0.015


def test_ece_of_overconfident_answers_is_high_and_temperature_fixes_it() -> None:
    probabilities, labels = calibrated_answers(20_000, 4, seed=1)
    sharp = overconfident(probabilities)
    before = expected_calibration_error(sharp, labels)
    assert before > 0.1

    temperature = fit_temperature(sharp, labels)

    assert temperature == pytest.approx(3.0, rel=0.1)  # undoes the sharpening
    after = apply_temperature(sharp, temperature)
    assert expected_calibration_error(after, labels) < 0.02 < before
    assert negative_log_likelihood(after, labels) < negative_log_likelihood(sharp, labels)
    np.testing.assert_array_equal(after.argmax(axis=1), sharp.argmax(axis=1))


def test_underconfident_answers_get_a_temperature_below_one() -> None:
    probabilities, labels = calibrated_answers(5_000, 3, seed=2)
    timid = apply_temperature(probabilities, 2.0)
    assert fit_temperature(timid, labels) == pytest.approx(0.5, rel=0.1)


def test_ece_counts_each_bin_by_its_share() -> None:
    # 10 answers at 0.95 of which 5 right (gap 0.45); 10 at 0.55 of which 5 right (gap 0.05)
    probabilities = np.array([[0.95, 0.05]] * 10 + [[0.55, 0.45]] * 10)
    labels = np.array([0] * 5 + [1] * 5 + [0] * 5 + [1] * 5)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    table = reliability(probabilities, labels)
    assert table.counts.sum() == 20 and table.counts[14] == 10 and table.counts[8] == 10
    # a confidence of exactly 1 lands in the last bin, not past it
    assert reliability(np.array([[1.0, 0.0]]), np.array([0])).counts[14] == 1


def test_zero_probabilities_do_not_turn_into_nan() -> None:
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    for temperature in (0.5, 2.0):
        scaled = apply_temperature(probabilities, temperature)
        assert np.isfinite(scaled).all()
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert fit_temperature(probabilities, np.array([0, 1])) > 0


def test_the_keras_layer_matches_numpy_and_survives_export(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(5,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    calibrated = with_temperature(model, 2.5)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    raw = model(x).numpy()
    np.testing.assert_allclose(calibrated(x).numpy(), apply_temperature(raw, 2.5), atol=1e-6)

    export_saved_model(calibrated, tmp_path / "1", tf.TensorSpec([None, 5], tf.float32))
    serve = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    reloaded = serve(tf.constant(x))["probabilities"].numpy()
    np.testing.assert_allclose(reloaded, apply_temperature(raw, 2.5), atol=1e-6)
    assert reloaded.dtype == np.float32
    with pytest.raises(ValueError, match="positive"):
        TemperatureScaling(0.0)


def test_calibration_card_reports_both_sides_and_refuses_changed_predictions(tmp_path: Path) -> None:
    probabilities, labels = calibrated_answers(2_000, 3, seed=3)
    sharp = overconfident(probabilities)
    temperature = fit_temperature(sharp[:1000], labels[:1000])
    test_after = apply_temperature(sharp[1000:], temperature)
    card = calibration_card(
        temperature, "validation", sharp[:1000], labels[:1000], sharp[1000:], test_after, labels[1000:], "r.png"
    )
    json.dumps(card)  # JSON-safe
    assert card["test"]["after"]["ece"] < card["test"]["before"]["ece"]
    assert card["fit_data"]["after"]["nll"] <= card["fit_data"]["before"]["nll"]
    assert card["fitted_on_count"] == 1000 and card["test"]["predictions_changed"] == 0

    flipped = test_after.copy()
    flipped[0] = flipped[0][::-1] if flipped[0].argmax() != 1 else np.roll(flipped[0], 1)
    with pytest.raises(RuntimeError, match="changed 1 test prediction"):
        calibration_card(temperature, "v", sharp[:10], labels[:10], sharp[1000:], flipped, labels[1000:], "r.png")

    png = tmp_path / "reliability.png"
    plot_reliability(sharp[1000:], test_after, labels[1000:], temperature, png)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
