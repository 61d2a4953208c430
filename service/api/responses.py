"""A model's answer as an HTTP response: JSON serialised once, and headers naming who answered.

The routes build plain dicts in the shape their `response_model` documents and return them
through here, so FastAPI neither validates them a second time nor walks them with its
generic encoder (schemathesis checks the shape against the schema in the tests).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response

from service.core.inference import Prediction


def served_by(response: Response, prediction: Prediction) -> None:
    """Name the model version that answered and the largest batch it ran in, for the client and the log."""
    response.headers["X-Model"] = prediction.version.name
    response.headers["X-Model-Version"] = str(prediction.version.version)
    response.headers["X-Batch-Size"] = str(prediction.batch_size)


def prediction_answer(prediction: Prediction, results: list[dict[str, Any]]) -> Response:
    """The answer of the REST routes: the model, the version and each input's result."""
    body = {"model": prediction.version.name, "version": prediction.version.version, "results": results}
    response = Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")
    served_by(response, prediction)
    return response
