"""Tests that need a tool the machine may lack: skip by hand, fail in CI (REQUIRE_TOOLS=1)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def tools_required() -> bool:
    return os.environ.get("REQUIRE_TOOLS") == "1"


def missing_tool(reason: str) -> NoReturn:
    """Skip with the reason when run by hand; fail when REQUIRE_TOOLS=1 (`.ci/run` sets it)."""
    if tools_required():
        pytest.fail(f"{reason} (REQUIRE_TOOLS=1: a missing tool is a failure)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also from a module's top level
