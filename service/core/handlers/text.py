"""Text classifiers: rows are UTF-8 byte strings; tokenising happens inside the model's graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from contract import kinds
from service.core.handlers.base import Decoded, Handler, Prepared
from service.core.monitoring import TEXT_LENGTH
from service.settings import Settings


class TextHandler(Handler):
    kind = kinds.TEXT
    v2_datatype = "BYTES"
    signals = (TEXT_LENGTH,)

    @staticmethod
    def request_limit(settings: Settings) -> int:
        return settings.max_texts

    def decode(self, item: str, index: int) -> Decoded:
        return Decoded([item.encode("utf-8")], (len(item),))

    def concat(self, pieces: list[list[bytes]]) -> list[bytes]:
        return [text for piece in pieces for text in piece]

    def warm_up_rows(self, count: int) -> list[bytes]:
        return [b"warm up"] * count

    def from_tensor(self, tensor: np.ndarray) -> Prepared:
        rows = list(tensor.reshape(-1))
        # Characters, as for texts sent to /sentiment; the model itself reads bytes that are not UTF-8 too.
        return Prepared(rows, {TEXT_LENGTH: [len(row.decode("utf-8", "replace")) for row in rows]})

    def results(self, outputs: np.ndarray, items: Sequence[str], **options: Any) -> list[dict[str, Any]]:
        """Each text's top label, and every class's probability."""
        labels = self.labels
        return [
            {"label": labels[top], "probabilities": dict(zip(labels, row, strict=True))}
            for top, row in zip(outputs.argmax(axis=1).tolist(), outputs.tolist(), strict=True)
        ]
