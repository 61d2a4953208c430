"""The card's monitoring reference, and the one way to bin values and compare distributions.

Training measures summaries of a model's predictions and inputs on its evaluation split and
writes them into the card as `card["monitoring"]["reference"]` (training/monitoring.py builds
it); the service keeps the same summaries over a window of live predictions and scores the
difference. Both sides bin with `bin_index` and compare with `psi`, so a reference and a live
window can never disagree on which bin a value falls in.

    {"split": "test",
     "predicted_label_share": {"cat": 0.1, ...},                       # by label, sums to 1
     "top1_probability": {"edges": [0.0, 0.1, ..., 1.0],               # 11 edges, 10 shares
                          "share": [0.0, ..., 0.4]},
     "input": {"text_length_chars": {"edges": [0, 50, ..., null], "share": [...]}}}
               # or {"image_width": {...}, "image_height": {...}} for images

Bins are half-open, [edges[i], edges[i+1]), except the last, which also holds its upper edge
(as numpy.histogram counts); `null` as the last edge means no upper bound. Values outside the
edges count in the nearest outer bin, so every observation is in some bin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# A share of 0 would make the score infinite; a bin nobody saw counts as this share instead.
SHARE_FLOOR = 1e-4

# The population stability index people act on: below 0.1 no real change, 0.1-0.25 a moderate
# one, above 0.25 a shift worth a look (the service's default threshold and the alert's).
PSI_SIGNIFICANT = 0.25

CONFIDENCE_EDGES: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))


class Histogram(BaseModel):
    """Bin edges (the last may be None: no upper bound) and the share of values in each bin."""

    model_config = ConfigDict(frozen=True)

    edges: list[float | None] = Field(min_length=2)
    share: list[float] = Field(min_length=1)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float | None]) -> list[float | None]:
        if any(edge is None for edge in edges[:-1]):
            raise ValueError("only the last edge may be null (no upper bound)")
        finite = [float(edge) for edge in edges if edge is not None]
        if any(not math.isfinite(edge) for edge in finite) or bool(np.any(np.diff(finite) <= 0)):
            raise ValueError("edges must be finite numbers in increasing order")
        return edges

    @model_validator(mode="after")
    def _shares(self) -> Histogram:
        if len(self.share) != len(self.edges) - 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) - 1} bins, not {len(self.share)}")
        _check_shares(self.share)
        return self

    @property
    def finite_edges(self) -> np.ndarray:
        """The edges as floats, +inf for a null last edge."""
        return np.array([math.inf if edge is None else edge for edge in self.edges], dtype=np.float64)


class Reference(BaseModel):
    """What the model's predictions and inputs looked like on the split it was evaluated on."""

    model_config = ConfigDict(frozen=True, extra="allow")

    split: str
    predicted_label_share: dict[str, float]
    top1_probability: Histogram
    input: dict[str, Histogram] = Field(default_factory=dict)

    @field_validator("predicted_label_share")
    @classmethod
    def _label_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        _check_shares(list(shares.values()))
        return shares


def _check_shares(shares: Sequence[float]) -> None:
    if any(not math.isfinite(s) or s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-3):
        raise ValueError(f"shares must be non-negative and add up to 1 (they add up to {sum(shares):.4f})")


def reference_of(card_extra: Mapping[str, Any] | None) -> Reference | None:
    """The reference in a card's extra fields; None when there is none.

    Raises ValueError naming what is wrong when a reference is there but malformed.
    """
    monitoring = (card_extra or {}).get("monitoring")
    if not isinstance(monitoring, Mapping) or monitoring.get("reference") is None:
        return None
    try:
        return Reference.model_validate(monitoring["reference"])
    except ValidationError as exc:
        raise ValueError(f"malformed monitoring reference: {exc}") from None


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (see the module's docstring for the rule), as an int array."""
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, len(edges) - 2)


def histogram_share(values: Sequence[float] | np.ndarray, edges: Sequence[float | None]) -> list[float]:
    """The share of `values` in each bin: what training writes as a reference histogram's `share`."""
    bounds = np.array([math.inf if edge is None else edge for edge in edges], dtype=np.float64)
    counts = np.bincount(bin_index(np.asarray(values, dtype=np.float64), bounds), minlength=len(bounds) - 1)
    return (counts / max(1, counts.sum())).tolist()


def psi(live: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares or counts).

    sum((live - ref) * ln(live / ref)) over the bins, each share floored at SHARE_FLOOR.
    0 for identical distributions; it grows without bound as they part.
    """
    live = np.asarray(live, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    p = np.maximum(live / max(live.sum(), 1e-12), SHARE_FLOOR)
    q = np.maximum(reference / max(reference.sum(), 1e-12), SHARE_FLOOR)
    return float(np.sum((p - q) * np.log(p / q)))
