"""Image classifiers: uint8 [n, H, W, 3] rows, decoded from PNG, JPEG, WebP, BMP or GIF uploads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract import kinds
from contract.kinds import ImageInput
from service.core.errors import ServiceError
from service.core.handlers.base import Handler
from service.core.imaging import decode_image
from service.settings import Settings


@dataclass(frozen=True)
class ImagePrediction:
    """One image's answer: its labels ranked by probability, the top `k` of them."""

    top_k: list[tuple[str, float]]


class ImageHandler(Handler):
    kind = kinds.IMAGE
    v2_datatype = "UINT8"

    def __init__(self, model, settings: Settings) -> None:  # type: ignore[no-untyped-def]
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
        try:
            return decode_image(data, self.height, self.width, self.max_pixels)[np.newaxis]
        except ServiceError as exc:
            raise exc.about(subject) from None

    def concat(self, pieces: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pieces)

    def warm_up_rows(self, count: int) -> np.ndarray:
        return np.zeros((count, self.height, self.width, 3), dtype=np.uint8)

    def rows_from_tensor(self, tensor: np.ndarray) -> np.ndarray:
        return tensor

    def predictions(self, outputs: np.ndarray, top_k: int) -> list[ImagePrediction]:
        labels = self.labels
        k = min(top_k, len(labels))
        ranked = np.argsort(-outputs, axis=1, kind="stable")[:, :k]
        return [
            ImagePrediction([(labels[i], float(row[i])) for i in order])
            for row, order in zip(outputs, ranked, strict=True)
        ]
