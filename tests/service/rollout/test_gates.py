"""Gates: judged only on enough requests, "unknown" never passes, each applies to its modes."""

from __future__ import annotations

import numpy as np

from service.rollout.gates import ShadowFigures, VersionFigures, judge
from service.rollout.policy import Gates

GATES = Gates(min_requests=10, min_agreement=0.9, max_error_rate=0.1, max_p99_ratio=2.0,
              max_drift_vs_stable=0.25, max_drift_vs_reference=0.25)


def _figures(answers: int, label: str = "positive", seconds: float = 0.01, failures: int = 0) -> VersionFigures:
    figures = VersionFigures(window=100)
    for _ in range(answers):
        figures.answered(seconds, [label])
    for _ in range(failures):
        figures.failed(seconds)
    return figures


def _statuses(results: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {result.gate: result.status for result in results}


def test_with_too_few_candidate_requests_every_gate_is_unknown_even_a_clearly_failing_one() -> None:
    results = judge("canary", GATES, _figures(50), _figures(5, failures=4), None, {"positive": 1.0})
    assert set(_statuses(results).values()) == {"unknown"}
    assert all("of the 10 candidate requests needed" in result.detail for result in results)


def test_canary_judges_errors_latency_and_drift_but_not_agreement() -> None:
    stable = _figures(50, seconds=0.010)
    candidate = _figures(19, seconds=0.030, failures=1)
    results = judge("canary", GATES, stable, candidate, None, {"positive": 1.0})
    assert _statuses(results) == {"error_rate": "pass", "p99_ratio": "fail", "drift_vs_stable": "pass",
                                  "drift_vs_reference": "pass"}


def test_labels_unlike_stables_fail_the_drift_gate_and_a_card_without_reference_leaves_its_gate_unknown() -> None:
    results = judge("canary", GATES, _figures(50, "positive"), _figures(50, "negative"), None, None)
    assert _statuses(results)["drift_vs_stable"] == "fail"
    assert _statuses(results)["drift_vs_reference"] == "unknown"
    assert "no monitoring reference" in results[-1].detail


def test_shadow_judges_agreement_on_label_names_and_leaves_latency_to_canary() -> None:
    shadow = ShadowFigures(window=100)
    for _ in range(20):
        shadow.compared(["positive"], ["negative"], np.array([0.9]), np.array([0.9]))
    results = judge("shadow", GATES, _figures(20, seconds=0.01), _figures(20, seconds=1.0), shadow, None)
    agreement = results[0]
    assert (agreement.gate, agreement.status, agreement.value) == ("agreement", "fail", 0.0)
    assert "p99_ratio" not in _statuses(results)  # the copies' time is the scheduling of copies


def test_a_gate_set_to_null_is_off_and_a_stable_with_no_answers_leaves_comparisons_unknown() -> None:
    gates = GATES.model_copy(update={"max_p99_ratio": None})
    results = judge("canary", gates, _figures(0), _figures(20), None, None)
    assert _statuses(results) == {"error_rate": "pass", "p99_ratio": "off", "drift_vs_stable": "unknown",
                                  "drift_vs_reference": "unknown"}


def test_the_window_forgets_old_requests() -> None:
    figures = VersionFigures(window=10)
    for _ in range(10):
        figures.failed(0.01)
    for _ in range(10):
        figures.answered(0.01, ["positive"])
    assert (figures.requests, figures.errors, figures.error_rate) == (20, 10, 0.0)
