"""The live figures of a rollout, and the gates judged on them.

Figures are kept per process over the last `window` requests of each version in the rollout:
latencies (time in the version's batcher: queue and model, the part a version changes),
failures, and the labels clients receive. In shadow mode each copy also records whether the
candidate gave the same label as stable (compared by name, so a candidate whose card swaps the
labels disagrees even where its output indices are the same) and how far the two top-1
probabilities were apart.

Which gates apply:

| gate | shadow | canary |
|---|---|---|
| agreement (candidate label == stable label) | yes | no: no request gets both answers |
| error rate | yes | yes |
| p99 latency against stable's | no: copies yield to clients (below) | yes |
| drift against stable's live labels | yes | yes |
| drift against the card's reference | yes, where the card has one | yes, where the card has one |

A shadow copy waits until stable has no client work and then may wait for the model thread
behind the next client batch, so its time measures the scheduling of copies, not the version:
latency is judged in canary mode, where both versions answer clients under the same conditions
(the copies' p99 is still reported). A gate with too few candidate requests, or without what it
compares against, is "unknown": it never fails a candidate and never counts as passed.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from contract.monitoring import psi
from service.rollout.policy import Gates, Mode

Status = Literal["pass", "fail", "unknown", "off"]


class VersionFigures:
    """One version's recent requests in a rollout."""

    def __init__(self, window: int) -> None:
        self.requests = 0
        self.errors = 0
        self._latencies: deque[float] = deque(maxlen=window)
        self._failed: deque[bool] = deque(maxlen=window)
        self._labels: deque[str] = deque(maxlen=window)

    def answered(self, seconds: float, labels: list[str]) -> None:
        self.requests += 1
        self._latencies.append(seconds)
        self._failed.append(False)
        self._labels.extend(labels)

    def failed(self, seconds: float) -> None:
        self.requests += 1
        self.errors += 1
        self._latencies.append(seconds)
        self._failed.append(True)

    @property
    def in_window(self) -> int:
        return len(self._failed)

    @property
    def error_rate(self) -> float | None:
        return sum(self._failed) / len(self._failed) if self._failed else None

    @property
    def p99_s(self) -> float | None:
        return float(np.percentile(self._latencies, 99)) if self._latencies else None

    def label_counts(self) -> Counter[str]:
        return Counter(self._labels)

    def describe(self) -> dict[str, object]:
        p99 = self.p99_s
        return {"requests": self.requests, "errors": self.errors, "in_window": self.in_window,
                "error_rate": _round(self.error_rate), "p99_ms": None if p99 is None else round(p99 * 1000, 3)}


class ShadowFigures:
    """Each shadow copy's comparison with the answer the client got, and the copies dropped."""

    def __init__(self, window: int) -> None:
        self.copies = 0  # answered or failed on the candidate
        self.dropped = 0
        self._agreed: deque[bool] = deque(maxlen=window)
        self._top1_difference: deque[float] = deque(maxlen=window)

    def compared(self, stable_labels: list[str], candidate_labels: list[str], stable_top1: np.ndarray,
                 candidate_top1: np.ndarray) -> None:
        self.copies += 1
        self._agreed.extend(s == c for s, c in zip(stable_labels, candidate_labels, strict=True))
        self._top1_difference.extend(np.abs(stable_top1 - candidate_top1).tolist())

    @property
    def agreement(self) -> float | None:
        return sum(self._agreed) / len(self._agreed) if self._agreed else None

    @property
    def mean_top1_difference(self) -> float | None:
        return float(np.mean(self._top1_difference)) if self._top1_difference else None

    def describe(self) -> dict[str, object]:
        return {"copies": self.copies, "dropped": self.dropped, "compared_inputs": len(self._agreed),
                "agreement": _round(self.agreement), "mean_top1_difference": _round(self.mean_top1_difference)}


@dataclass(frozen=True)
class GateResult:
    gate: str
    status: Status
    value: float | None
    limit: float | None
    detail: str

    def describe(self) -> dict[str, object]:
        return {"gate": self.gate, "status": self.status, "value": _round(self.value), "limit": self.limit,
                "detail": self.detail}


def judge(mode: Mode, gates: Gates, stable: VersionFigures, candidate: VersionFigures,
          shadow: ShadowFigures | None, reference_shares: Mapping[str, float] | None) -> list[GateResult]:
    """Every gate of `mode`, judged on the figures as they are now."""
    enough = candidate.in_window >= gates.min_requests
    short = f"{candidate.in_window} of the {gates.min_requests} candidate requests needed"

    def gate(name: str, limit: float | None, value: float | None, missing: str = "",
             at_least: bool = False) -> GateResult:
        """A figure against its limit: at most the limit, or at least it (`at_least`)."""
        if limit is None:
            return GateResult(name, "off", value, None, "turned off in the policy")
        if not enough:
            return GateResult(name, "unknown", value, limit, short)
        if value is None:
            return GateResult(name, "unknown", None, limit, missing)
        passes = value >= limit if at_least else value <= limit
        return GateResult(name, "pass" if passes else "fail", value, limit, "")

    no_stable = "stable has answered no request in this process yet"
    results = []
    if mode == "shadow":
        agreement = shadow.agreement if shadow is not None else None
        results.append(gate("agreement", gates.min_agreement, agreement, "no shadow copy compared yet",
                            at_least=True))
    results.append(gate("error_rate", gates.max_error_rate, candidate.error_rate))
    if mode == "canary":
        results.append(gate("p99_ratio", gates.max_p99_ratio, _ratio(candidate.p99_s, stable.p99_s), no_stable))
    results.append(gate("drift_vs_stable", gates.max_drift_vs_stable,
                        _label_psi(candidate.label_counts(), stable.label_counts()), no_stable))
    against_card = (_label_psi(candidate.label_counts(), reference_shares)
                    if reference_shares is not None else None)
    results.append(gate("drift_vs_reference", gates.max_drift_vs_reference, against_card,
                        "the candidate's card has no monitoring reference"))
    return results


def _label_psi(live: Mapping[str, float], reference: Mapping[str, float]) -> float | None:
    """PSI between two label distributions, matched by label name; None while either is empty."""
    labels = sorted(set(live) | set(reference))
    if not sum(live.values()) or not sum(reference.values()):
        return None
    return psi(np.array([live.get(label, 0) for label in labels], dtype=np.float64),
               np.array([reference.get(label, 0) for label in labels], dtype=np.float64))


def _ratio(candidate: float | None, stable: float | None) -> float | None:
    if candidate is None or stable is None or stable <= 0:
        return None
    return candidate / stable


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
