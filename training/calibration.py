"""Probabilities that mean what they say: temperature scaling, its error measure and its plot.

A classifier's top-1 probability is calibrated when, among the answers given with
probability about 0.9, about 90% are right. Networks trained to low loss are usually
over-confident. Temperature scaling (Guo et al., "On Calibration of Modern Neural
Networks", 2017) fixes most of that with one number T fitted on data the model did not
learn from:

    calibrated = softmax(log(p) / T)

For a single softmax network `log(p)` is its logits minus a per-row constant, so this is the
usual `softmax(logits / T)`. Applied to the served probabilities it works the same way for a
model that averages several members' probabilities: one temperature on what the service
answers. T > 1 softens over-confident answers, T < 1 sharpens timid ones; the order of the
classes, and so every prediction and the accuracy, stay as they were.

Expected calibration error (ECE) here is always the top-1 version with 15 equal-width bins
on [0, 1]: each answer falls in the bin of its top probability (a probability of exactly 1.0
in the last bin), and ECE is the mean over bins of |accuracy - mean confidence| weighted by
the share of answers in the bin. It is computed in one place, contract.verification, which
the service also uses to check a faster runtime against a version's verification sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from contract.verification import ECE_BINS, ECE_DEFINITION, expected_calibration_error, reliability

# Probabilities below this are treated as this before the log: float32 softmax outputs can
# underflow to exactly 0, and log(0) would turn a whole row into NaN after the division.
_FLOOR = 1e-30
# The range searched for T: far wider than any real model needs, narrow enough to stay finite.
_T_MIN, _T_MAX = 0.05, 20.0

METHOD = (
    "temperature scaling inside the exported graph: probabilities = softmax(log(p) / T), "
    "p being the model's probabilities before calibration; T fitted by minimising the "
    "negative log-likelihood"
)


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(probabilities, np.float64), _FLOOR))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) in NumPy: what the exported `TemperatureScaling` layer computes."""
    scaled = _log_probabilities(probabilities) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class), with the same floor as the temperature's log."""
    rows = np.arange(len(labels))
    return float(-np.mean(_log_probabilities(probabilities)[rows, np.asarray(labels)]))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of `labels`.

    The likelihood is convex in 1/T (a log-sum-exp minus a linear term), so a bounded
    one-dimensional search finds the optimum; searching over log T keeps it even-handed
    between softening and sharpening.
    """
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("fit_temperature needs at least one example")
    log_p = _log_probabilities(probabilities)
    log_p -= log_p.max(axis=1, keepdims=True)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        scaled = log_p / np.exp(log_t)
        log_norm = np.log(np.exp(scaled - scaled.max(axis=1, keepdims=True)).sum(axis=1)) + scaled.max(axis=1)
        return float(np.mean(log_norm - scaled[rows, labels]))

    result = minimize_scalar(nll, bounds=(np.log(_T_MIN), np.log(_T_MAX)), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


@keras.saving.register_keras_serializable(package="training")
class TemperatureScaling(keras.layers.Layer):
    """Probabilities [batch, classes] -> softmax(log(p) / T), in float32, T fixed at export."""

    def __init__(self, temperature: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def call(self, probabilities: Any) -> Any:
        log_p = ops.log(ops.maximum(ops.cast(probabilities, "float32"), _FLOOR))
        return ops.softmax(log_p / self.temperature, axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """The same model (one input, probabilities out) with its answers passed through T."""
    source = model.inputs[0]
    inputs = keras.Input(shape=source.shape[1:], dtype=source.dtype, name=source.name)
    outputs = TemperatureScaling(temperature, dtype="float32", name="calibrated_probabilities")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_calibrated")


def calibration_card(
    temperature: float,
    fitted_on: str,
    fit_probabilities: np.ndarray,
    fit_labels: np.ndarray,
    test_before: np.ndarray,
    test_after: np.ndarray,
    test_labels: np.ndarray,
    diagram: str,
) -> dict[str, Any]:
    """The card's `calibration` section; refuses to describe a calibration that changed a prediction.

    `test_before` are the model's test probabilities without T (in-process), `test_after` the
    reloaded SavedModel's with T.
    """
    changed = int(np.sum(test_before.argmax(axis=1) != test_after.argmax(axis=1)))
    if changed:
        raise RuntimeError(f"temperature {temperature:.4f} changed {changed} test prediction(s); it must change none")
    fit_after = apply_temperature(fit_probabilities, temperature)

    def figures(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {
            "ece": round(expected_calibration_error(probabilities, labels), 5),
            "nll": round(negative_log_likelihood(probabilities, labels), 5),
        }

    return {
        "method": METHOD,
        "temperature": round(temperature, 5),
        "fitted_on": fitted_on,
        "fitted_on_count": len(fit_labels),
        "ece_definition": ECE_DEFINITION,
        "fit_data": {
            "before": figures(fit_probabilities, fit_labels),
            "after": figures(fit_after, fit_labels),
        },
        "test": {
            "before": figures(test_before, test_labels),
            "after": figures(test_after, test_labels),
            "accuracy": float(np.mean(test_after.argmax(axis=1) == test_labels)),
            "predictions_changed": changed,
        },
        "reliability_diagram": diagram,
    }


def plot_reliability(
    before: np.ndarray, after: np.ndarray, labels: np.ndarray, temperature: float, png: Path, title: str = "test split"
) -> None:
    """Two reliability diagrams side by side (before and after T): accuracy per confidence bin
    against the diagonal of perfect calibration, with each bin's share of answers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharey=True)
    for ax, probabilities, name in (
        (axes[0], before, "before calibration"),
        (axes[1], after, f"after, T = {temperature:.3f}"),
    ):
        table = reliability(probabilities, labels)
        centres = (table.edges[:-1] + table.edges[1:]) / 2
        width = table.edges[1] - table.edges[0]
        filled = table.counts > 0
        ax.bar(centres[filled], table.accuracy[filled], width=width * 0.95, color="tab:blue", label="accuracy")
        ax.bar(
            centres[filled],
            table.confidence[filled] - table.accuracy[filled],
            bottom=table.accuracy[filled],
            width=width * 0.95,
            color="tab:red",
            alpha=0.3,
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        share = ax.twinx()
        share.plot(centres, table.counts / max(1, table.counts.sum()), "o-", color="tab:gray", markersize=3)
        share.set_ylim(0, 1)
        share.set_ylabel("share of answers", color="tab:gray")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("top-1 confidence")
        ax.set_title(f"{name}: ECE {table.ece:.4f}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Reliability on the {title} ({len(labels):,} answers, {ECE_BINS} bins)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
