"""Image classifiers: uint8 [n, H, W, 3] rows, decoded from PNG, JPEG, WebP, BMP or GIF uploads."""

from __future__ import annotations

import numpy as np

from contract import kinds
from contract.kinds import ImageInput
from contract.savedmodel import LoadedModel
from service.core.errors import ServiceError
from service.core.handlers.base import Handler
from service.core.imaging import decode_image_and_size
from service.settings import Settings


class ImageHandler(Handler):
    kind = kinds.IMAGE
    v2_datatype = "UINT8"

    def __init__(self, model: LoadedModel, settings: Settings) -> None:
        super().__init__(model, settings)
        spec = self.card.input
        assert isinstance(spec, ImageInput)
        self.height, self.width = spec.height, spec.width
        self.max_pixels = settings.max_image_pixels

    @staticmethod
    def request_limit(settings: Settings) -> int:
        return settings.max_files

    def decode(self, data: bytes, subject: str) -> np.ndarray:
        """One upload -> one row, uint8 [1, H, W, 3]; errors name `subject` (e.g. "image 2 (cat.png)").

        CPU work: call it off the event loop.
        """
        return self.decode_with_size(data, subject)[0]

    def decode_with_size(self, data: bytes, subject: str) -> tuple[np.ndarray, int, int]:
        """`decode`, and the image's width and height as uploaded (the input summaries monitoring keeps)."""
        try:
            pixels, width, height = decode_image_and_size(data, self.height, self.width, self.max_pixels)
        except ServiceError as exc:
            raise exc.about(subject) from None
        return pixels[np.newaxis], width, height

    def concat(self, pieces: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pieces)

    def warm_up_rows(self, count: int) -> np.ndarray:
        return np.zeros((count, self.height, self.width, 3), dtype=np.uint8)

    def rows_from_tensor(self, tensor: np.ndarray) -> np.ndarray:
        return tensor

    def top_k(self, outputs: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Each image's `k` most probable labels, most probable first."""
        labels = self.labels
        ranked = np.argsort(-outputs, axis=1, kind="stable")[:, : min(k, len(labels))]
        probabilities = np.take_along_axis(outputs, ranked, axis=1).tolist()
        return [
            [(labels[i], p) for i, p in zip(order, row, strict=True)]
            for order, row in zip(ranked.tolist(), probabilities, strict=True)
        ]
