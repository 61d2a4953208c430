"""A model's answer as an HTTP response: JSON serialised once, and headers naming who answered.

The routes build plain dicts in the shape their `response_model` documents and return them
through here, so FastAPI neither validates them a second time nor walks them with its
generic encoder (schemathesis checks the shape against the schema in the tests).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response


def served_by(response: Response, model: str, version: int, batch_size: int) -> None:
    """Name the model version that answered and the largest batch it ran in, for the client and the log."""
    response.headers["X-Model"] = model
    response.headers["X-Model-Version"] = str(version)
    response.headers["X-Batch-Size"] = str(batch_size)


def model_answer(body: dict[str, Any], model: str, version: int, batch_size: int) -> Response:
    response = Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")
    served_by(response, model, version, batch_size)
    return response
