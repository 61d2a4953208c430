"""Image classifiers: uint8 [n, H, W, 3] rows, decoded from PNG, JPEG, WebP, BMP or GIF uploads.

An answer is explained over a grid of SERVICE_EXPLAIN_GRID cells per side, evenly covering the image
as the model sees it (resized): a variant per cell, that cell filled with mid-grey (128).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract import kinds, occlusion
from contract.card import ModelCard
from contract.kinds import ImageInput
from service.core.errors import ServiceError
from service.core.handlers.base import Decoded, Handler, Occlusion, Prepared
from service.core.imaging import decode_image
from service.core.monitoring import IMAGE_HEIGHT, IMAGE_WIDTH
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """One image as a client sent it: its bytes, and its file name when it came with one."""

    data: bytes
    filename: str | None = None


class ImageHandler(Handler):
    kind = kinds.IMAGE
    v2_datatype = "UINT8"
    signals = (IMAGE_WIDTH, IMAGE_HEIGHT)  # as uploaded, before resizing
    decode_span = ("decode image", "image.bytes")

    def __init__(self, card: ModelCard, settings: Settings) -> None:
        super().__init__(card, settings)
        spec = card.input
        assert isinstance(spec, ImageInput)
        self.height, self.width = spec.height, spec.width
        self.max_pixels = settings.max_image_pixels
        self.grid = occlusion.grid_for(self.height, self.width, settings.explain_grid)

    @staticmethod
    def request_limit(settings: Settings) -> int:
        return settings.max_files

    def decode_cost(self, item: EncodedImage) -> int:
        return len(item.data)

    def decode(self, item: EncodedImage, index: int) -> Decoded:
        """One upload -> one row, uint8 [1, H, W, 3], and its size as uploaded; errors name it ("image 2 (cat.png)")."""
        try:
            pixels, width, height = decode_image(item.data, self.height, self.width, self.max_pixels)
        except ServiceError as exc:
            subject = f"image {index}" + (f" ({item.filename})" if item.filename else "")
            raise exc.about(subject) from None
        return Decoded(pixels[np.newaxis], (width, height))

    def concat(self, pieces: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(pieces)

    def warm_up_rows(self, count: int) -> np.ndarray:
        return np.zeros((count, self.height, self.width, 3), dtype=np.uint8)

    def from_tensor(self, tensor: np.ndarray) -> Prepared:
        count = len(tensor)
        return Prepared(tensor, {IMAGE_WIDTH: [self.width] * count, IMAGE_HEIGHT: [self.height] * count})

    def results(self, outputs: np.ndarray, items: Sequence[EncodedImage], **options: Any) -> list[dict[str, Any]]:
        """Each image's file name and its `top_k` most probable labels, most probable first."""
        labels = self.labels
        ranked = np.argsort(-outputs, axis=1, kind="stable")[:, : min(options["top_k"], len(labels))]
        probabilities = np.take_along_axis(outputs, ranked, axis=1).tolist()
        results = []
        for item, order, row in zip(items, ranked.tolist(), probabilities, strict=True):
            top = [{"label": labels[i], "probability": p} for i, p in zip(order, row, strict=True)]
            results.append({"filename": item.filename, "label": top[0]["label"],
                            "probability": top[0]["probability"], "top_k": top})
        return results

    v2_explanation_outputs = ("saliency",)

    def explain_refusal(self) -> str | None:
        return None

    def explain_inputs(self, tensor: np.ndarray) -> tuple[list[Any], list[Decoded]]:
        return [None] * len(tensor), [Decoded(tensor[i : i + 1]) for i in range(len(tensor))]

    def explanation_tensors(self, explanations: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """saliency FP32 [n, grid, grid]."""
        return {"saliency": np.array([e["saliency"] for e in explanations], dtype=np.float32)
                .reshape(len(explanations), self.grid, self.grid)}

    def occlusions(self, item: EncodedImage | None, decoded: Decoded) -> Occlusion:
        """A variant per grid cell, filled with grey (contract.occlusion)."""
        variants = occlusion.image_variants(decoded.rows[0], self.grid)
        return Occlusion(variants, len(variants), self.grid)

    def explanation(self, output: np.ndarray, variants: np.ndarray, plan: Occlusion) -> dict[str, Any]:
        top, drops = occlusion.weights(output, variants)
        saliency = drops.reshape(self.grid, self.grid).tolist()
        return {"label": self.labels[top], "method": "occlusion", "fill": occlusion.GREY, "saliency": saliency}
