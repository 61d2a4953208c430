"""Text classifiers: rows are UTF-8 byte strings; tokenising happens inside the model's graph.

An answer is explained word by word (service.core.explaining): a variant per word the model saw
(contract.tokens, as the card declares them) with that word's characters blanked, or, for a text
of more than SERVICE_EXPLAIN_MAX_WORDS words, a variant per span of consecutive words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from contract import kinds, occlusion
from contract.card import ModelCard
from contract.kinds import TextInput
from contract.tokens import Tokenizer
from service.core.errors import InvalidInput
from service.core.handlers.base import Decoded, Handler, Occlusion, Prepared
from service.core.monitoring import TEXT_LENGTH
from service.settings import Settings


class TextHandler(Handler):
    kind = kinds.TEXT
    v2_datatype = "BYTES"
    signals = (TEXT_LENGTH,)

    def __init__(self, card: ModelCard, settings: Settings) -> None:
        super().__init__(card, settings)
        spec = card.input
        assert isinstance(spec, TextInput)
        self.tokenizer = Tokenizer(spec.tokenizer, spec.max_tokens) if spec.tokenizer is not None else None
        self.max_parts = settings.explain_max_words

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

    def explain_refusal(self) -> str | None:
        if self.tokenizer is None:
            return "its card declares no tokenizer (input.tokenizer), so the words its graph sees are not known"
        return None

    v2_explanation_outputs = ("token_weights", "token_offsets")

    def explain_inputs(self, tensor: np.ndarray) -> tuple[list[Any], list[Decoded]]:
        rows = list(tensor.reshape(-1))
        texts = []
        for index, row in enumerate(rows):
            try:
                texts.append(row.decode("utf-8"))
            except UnicodeDecodeError:
                raise InvalidInput(f"text {index} is not UTF-8, so its words cannot be placed in it",
                                   accepted="UTF-8 texts with parameters.explain") from None
        return texts, [Decoded([row]) for row in rows]

    def explanation_tensors(self, explanations: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """token_weights FP32 [n, T] and token_offsets INT32 [n, T, 2] ([start, end) in code points), T the most
        words of any text, padded with -1."""
        width = max((len(e["tokens"]) for e in explanations), default=0)
        weights = np.full((len(explanations), width), -1.0, dtype=np.float32)
        offsets = np.full((len(explanations), width, 2), -1, dtype=np.int32)
        for row, explanation in enumerate(explanations):
            for column, token in enumerate(explanation["tokens"]):
                weights[row, column] = token["weight"]
                offsets[row, column] = (token["start"], token["end"])
        return {"token_weights": weights, "token_offsets": offsets}

    def explain_cost(self, item: str) -> int:
        return len(item) * 8  # the tokenizer's per-character work is several passes over the text

    def occlusions(self, item: str, decoded: Decoded) -> Occlusion:
        """A variant per word (or span of words), blanked (contract.occlusion)."""
        assert self.tokenizer is not None  # explain_refusal was asked first
        tokens = self.tokenizer.tokens(item)
        runs = occlusion.parts(len(tokens), self.max_parts)
        rows = [variant.encode("utf-8") for variant in occlusion.text_variants(item, tokens, runs)]
        return Occlusion(rows, len(rows), (tokens, runs))

    def explanation(self, output: np.ndarray, variants: np.ndarray, plan: Occlusion) -> dict[str, Any]:
        tokens, runs = plan.parts
        top, drops = occlusion.weights(output, variants)
        weighted = [
            {"text": token.text, "start": token.start, "end": token.end, "weight": drop}
            for (first, end), drop in zip(runs, drops.tolist(), strict=True)
            for token in tokens[first:end]
        ]
        spans = len(runs) if len(runs) < len(tokens) else None
        return {"label": self.labels[top], "method": "occlusion", "spans": spans, "tokens": weighted}

