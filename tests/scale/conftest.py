"""The scale tests run only under `make test-scale` (SCALE_TESTS=1): they start a two-node Ray cluster.

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SCALE_TESTS") == "1":
        return
    here = Path(__file__).parent
    deselected = [item for item in items if here in Path(item.path).parents]
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
