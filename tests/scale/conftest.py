"""The scale tests run only under `make test-scale` (SCALE_TESTS=1), and offline scoring on Ray only under
`make test-score-ray` (SCORE_RAY_TESTS=1): they start a two-node Ray cluster.

Under a plain `pytest` (make test) they are deselected, not skipped: they are a separate suite.
The figures they measure go to bench-results/scale/report.json and into the terminal summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPORT = Path(__file__).resolve().parents[2] / "bench-results" / "scale" / "report.json"
FIGURES: dict[str, Any] = {}


# Offline scoring on Ray is a suite of its own (make test-score-ray, SCORE_RAY_TESTS=1), with its own time
# limit in CI, so that make test-scale keeps its budget.
SCORE_ON_RAY = "test_score_on_ray.py"


def _selected(path: Path) -> bool:
    variable = "SCORE_RAY_TESTS" if path.name == SCORE_ON_RAY else "SCALE_TESTS"
    return os.environ.get(variable) == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    deselected = [item for item in items if here in Path(item.path).parents and not _selected(Path(item.path))]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(FIGURES, indent=2))
    terminalreporter.section("Ray Serve on two nodes: figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(value)}")
    terminalreporter.write_line(f"(written to {REPORT})")
