"""The drift reference a card carries: what the model's answers and inputs looked like on the test split.

The service summarises its live traffic the same way, per model version, and scores the
difference (e.g. a population stability index per summary). Training measures the
reference once, at export, on the reloaded SavedModel's answers to the test split, and
writes it into the card as `monitoring.reference`:

    {
      "split": "<the test split, in words>",
      "count": <answers measured>,
      "predicted_label_share": {"<label>": <share of answers whose top-1 is this label>, ...},
      "top1_probability": {"edges": [0.0, 0.1, ..., 1.0], "share": [<10 shares>]},
      "input": {                      # text models
        "text_length_chars": {"edges": [0, 20, 50, 100, 200, 500, 1000, 2000, 5000, null], "share": [<9>]}
      }
      "input": {                      # image models, when the original sizes are known
        "image_width": {"edges": [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, null], "share": [<10>]},
        "image_height": {same edges, "share": [<10>]}
      }
    }

Every histogram is `{"edges": [n + 1 numbers], "share": [n numbers summing to 1]}`, and bucket
i holds the values v with edges[i] <= v < edges[i + 1]; a `null` last edge means no upper
bound (JSON has no infinity). The top-1 probability histogram has 10 equal-width buckets on
[0, 1] whose last bucket also holds exactly 1.0. Every label of the card appears in
`predicted_label_share`, with 0.0 when the model never predicted it; shares may be 0, so a
consumer computing a PSI adds a small floor first. Text length is in characters (Unicode
code points of the text as sent, Python's `len`); image width and height are in pixels as
the file declares them, before any resizing. No text or image is kept, only these counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from contract.monitoring import CONFIDENCE_EDGES, histogram_share

TOP1_EDGES = list(CONFIDENCE_EDGES)
TEXT_LENGTH_EDGES = [0, 20, 50, 100, 200, 500, 1000, 2000, 5000, float("inf")]
IMAGE_SIDE_EDGES = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, float("inf")]


def histogram(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> dict[str, list[Any]]:
    """Shares of `values` in right-open buckets [edges[i], edges[i + 1]); the last edge may be inf.

    Binned by contract.monitoring, as the service bins its live window. Values below the first
    edge are an error here rather than counted in the first bucket: a reference is measured on
    data the job controls.
    """
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        raise ValueError("a reference histogram needs at least one value")
    if values.min() < edges[0]:
        raise ValueError(f"value {values.min()} below the first edge {edges[0]}")
    card_edges = [None if math.isinf(e) else e for e in edges]
    return {"edges": card_edges, "share": [round(s, 6) for s in histogram_share(values, card_edges)]}


def reference(
    probabilities: np.ndarray,
    labels: Sequence[str],
    split: str,
    text_lengths: Sequence[int] | None = None,
    image_sizes: np.ndarray | None = None,
) -> dict[str, Any]:
    """The card's `monitoring.reference` (shape in the module docstring).

    `image_sizes` is [n, 2] of (height, width), the images' sizes before resizing.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities {probabilities.shape} do not match {len(labels)} labels")
    predicted = np.bincount(probabilities.argmax(axis=1), minlength=len(labels)) / len(probabilities)
    summary: dict[str, Any] = {
        "split": split,
        "count": len(probabilities),
        "predicted_label_share": {label: round(float(s), 6) for label, s in zip(labels, predicted, strict=True)},
        "top1_probability": histogram(probabilities.max(axis=1), TOP1_EDGES),
    }
    inputs: dict[str, Any] = {}
    if text_lengths is not None:
        inputs["text_length_chars"] = histogram(text_lengths, TEXT_LENGTH_EDGES)
    if image_sizes is not None:
        sizes = np.asarray(image_sizes)
        inputs["image_width"] = histogram(sizes[:, 1], IMAGE_SIDE_EDGES)
        inputs["image_height"] = histogram(sizes[:, 0], IMAGE_SIDE_EDGES)
    if inputs:
        summary["input"] = inputs
    return summary
