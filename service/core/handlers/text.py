"""Text classifiers: rows are UTF-8 byte strings; tokenising happens inside the model's graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract import kinds
from service.core.handlers.base import Handler
from service.settings import Settings


@dataclass(frozen=True)
class TextPrediction:
    """One text's answer: the top label and every class's probability."""

    label: str
    probabilities: dict[str, float]


class TextHandler(Handler):
    kind = kinds.TEXT
    v2_datatype = "BYTES"

    @staticmethod
    def request_limit(settings: Settings) -> int:
        return settings.max_texts

    def encode(self, texts: list[str]) -> list[bytes]:
        return [text.encode("utf-8") for text in texts]

    def concat(self, pieces: list[list[bytes]]) -> list[bytes]:
        return [text for piece in pieces for text in piece]

    def warm_up_rows(self, count: int) -> list[bytes]:
        return [b"warm up"] * count

    def rows_from_tensor(self, tensor: np.ndarray) -> list[bytes]:
        return list(tensor.reshape(-1))

    def predictions(self, outputs: np.ndarray) -> list[TextPrediction]:
        labels = self.labels
        return [
            TextPrediction(
                label=labels[int(row.argmax())],
                probabilities={label: float(p) for label, p in zip(labels, row.tolist(), strict=True)},
            )
            for row in outputs
        ]
