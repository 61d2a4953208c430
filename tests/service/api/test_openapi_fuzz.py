"""Schemathesis against the live service's own OpenAPI schema: every check, every phase, keys off and on.

The CLI runs as an independent user would run it (examples, coverage, fuzzing and the
stateful phase, positive and negative data). Its settings are in schemathesis.toml beside
this file; schemathesis_hooks.py teaches it what a valid image body is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.server import REPO, running_service

HERE = Path(__file__).parent
API_KEY = "fuzz-key-0123456789abcdef"

pytestmark = pytest.mark.live  # a real `python -m service` process


@pytest.mark.parametrize("keys", [False, True], ids=["keys-off", "keys-on"])
def test_every_operation_conforms_to_its_schema(artifacts_dir: Path, tmp_path: Path, keys: bool) -> None:
    overrides = {"max_body_bytes": "262144", "default_sentiment_model": "tiny-text"}
    auth: list[str] = []
    if keys:  # the fuzzer then also checks that every keyed route refuses requests without a valid key
        overrides["api_keys"] = API_KEY
        auth = ["--header", f"Authorization: Bearer {API_KEY}"]
    with running_service(artifacts_dir, tmp_path / "service.log", **overrides) as service:
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"),
            "run", f"{service.base_url}/openapi.json", "--checks", "all", "--mode", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "40",
            "--generation-deterministic", "--no-color", *auth,
        ]
        env = os.environ | {"SCHEMATHESIS_HOOKS": "tests.service.api.schemathesis_hooks", "PYTHONPATH": str(REPO)}
        run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout and "Coverage" in run.stdout  # the phases the docs promise did run
