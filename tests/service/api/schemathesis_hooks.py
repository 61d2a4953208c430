"""Loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS): what a valid image body is.

A binary string is all the schema can say of an image; this teaches the fuzzer what a
valid one is, so that its schema-valid requests carry real images of every accepted format.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st
from PIL import Image

from service.core.imaging import MEDIA_TYPES
from tests.service.images import encode

for _format, _media_type in MEDIA_TYPES.items():
    schemathesis.openapi.media_type(
        _media_type,
        st.builds(
            lambda size, colour, fmt=_format: encode(Image.new("RGB", size, colour), fmt),
            st.tuples(st.integers(1, 64), st.integers(1, 64)),
            st.tuples(*[st.integers(0, 255)] * 3),
        ),
    )
