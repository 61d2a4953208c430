"""Text classifiers: rows are UTF-8 byte strings; tokenising happens inside the model's graph."""

from __future__ import annotations

import numpy as np

from contract import kinds
from service.core.handlers.base import Handler
from service.settings import Settings


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

    def predictions(self, outputs: np.ndarray) -> list[tuple[str, dict[str, float]]]:
        """Each text's top label, and every class's probability."""
        labels = self.labels
        return [
            (labels[top], dict(zip(labels, row, strict=True)))
            for top, row in zip(outputs.argmax(axis=1).tolist(), outputs.tolist(), strict=True)
        ]
