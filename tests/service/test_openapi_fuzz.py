"""Schemathesis against the live service's own OpenAPI schema: every check must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from loadtests.server import running_service
from service.imaging import MEDIA_TYPES
from tests.service.images import encode

API_KEY = "fuzz-key-0123456789abcdef"

# A binary string is all the schema can say of an image; teach the fuzzer what a valid one is,
# so that its schema-valid requests carry real images of every accepted format.
for _format, _media_type in MEDIA_TYPES.items():
    schemathesis.openapi.media_type(
        _media_type,
        st.builds(
            lambda size, colour, fmt=_format: encode(Image.new("RGB", size, colour), fmt),
            st.tuples(st.integers(1, 64), st.integers(1, 64)),
            st.tuples(*[st.integers(0, 255)] * 3),
        ),
    )


def test_every_operation_conforms_to_its_schema(artifacts_dir: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    # With API keys on, the fuzzer also checks that every keyed route refuses requests without one.
    overrides = {"max_body_bytes": "262144", "default_sentiment_model": "tiny-text", "api_keys": API_KEY}
    with running_service(artifacts_dir, log_path, **overrides) as service:
        schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")

        @schema.auth()
        class ApiKey:
            def get(self, case: schemathesis.Case, context: object) -> str:
                return API_KEY

            def set(self, case: schemathesis.Case, key: str, context: object) -> None:
                case.headers = {**(case.headers or {}), "X-API-Key": key}

        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 7
        for operation in operations:
            try:
                check(operation)
            except Exception as error:
                pytest.fail(f"{operation.label}: {error}")


def check(operation: Any) -> None:
    """Schema-valid cases must be accepted, schema-invalid ones refused with a 4xx, all in shape."""
    # The protocol's infer body is model-agnostic JSON: which input names, datatypes and shapes
    # a model takes is in its metadata, not in the schema, so schema-valid bodies are often
    # (rightly) refused there. Every other check still applies to those routes.
    excluded = [positive_data_acceptance] if operation.path.endswith("/infer") else []

    @given(case=operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=excluded)

    conforms()
