"""BatchScorer on its own: one batch of columns in, the same columns and the answers out (Ray Data's shape)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.score.scorer import BatchScorer
from service.settings import Settings
from tests.service.images import solid
from tests.tiny_models import expected_positive


def test_a_batch_of_texts_keeps_its_columns_and_gets_the_answers(artifacts_dir: Path) -> None:
    scorer = BatchScorer(artifacts_dir / "tiny-text" / "2", Settings(artifacts_dir=artifacts_dir), warm_up_rows=2)
    texts = np.array(["good", "boom", "", "bad"], dtype=object)
    scored = scorer({"text": texts, "id": np.arange(4)})
    assert list(scored) == ["text", "id", "label", "probability", "probability_negative", "probability_positive",
                            "error", "model", "version"]
    assert scored["id"] == [0, 1, 2, 3]
    assert scored["label"] == ["positive", None, None, "negative"]
    assert scored["probability_positive"][0] == pytest.approx(expected_positive("good", 2), abs=1e-6)
    assert scored["error"][1].startswith("row 1: the model call failed") and scored["error"][2] == \
        "row 2: the text is empty"
    assert scored["model"] == ["tiny-text"] * 4 and scored["version"] == [2] * 4


def test_a_batch_of_image_bytes_is_named_by_its_paths(artifacts_dir: Path) -> None:
    scorer = BatchScorer(artifacts_dir / "tiny-image" / "1", Settings(artifacts_dir=artifacts_dir), warm_up_rows=2)
    scored = scorer({"bytes": [solid("green"), b"nope"], "path": ["a/g.png", "a/x.png"]})
    assert "bytes" not in scored and scored["path"] == ["a/g.png", "a/x.png"]
    assert scored["label"] == ["green", None]
    assert scored["error"] == [None, "image 1 (a/x.png): the data is not an image in a supported format"]
