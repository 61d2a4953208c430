"""Schemathesis against the live service's own OpenAPI schema: every check must pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode

from service.imaging import MEDIA_TYPES
from tests.service.images import encode
from loadtests.server import running_service

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
    with running_service(artifacts_dir, log_path, max_body_bytes="262144", default_sentiment_model="tiny-text") as service:
        schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 7
        for operation in operations:
            # Schema-valid cases must be accepted and schema-invalid ones refused with a 4xx.
            cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

            @given(case=cases)
            @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            def conforms(case: schemathesis.Case) -> None:
                case.call_and_validate()

            try:
                conforms()
            except Exception as error:
                pytest.fail(f"{operation.label}: {error}")
