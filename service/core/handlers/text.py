"""Text classifiers: rows are UTF-8 byte strings; tokenising happens inside the model's graph.

An answer is explained word by word (service.core.explaining): a variant per word the model saw
(contract.tokens, as the card declares them) with that word's characters blanked, or, for a text
of more than SERVICE_EXPLAIN_MAX_WORDS words, a variant per span of consecutive words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from contract import kinds
from contract.card import ModelCard
from contract.kinds import TextInput
from contract.tokens import Token, Tokenizer
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
        assert self.tokenizer is not None  # explain_refusal was asked first
        tokens = self.tokenizer.tokens(item)
        parts = _parts(len(tokens), self.max_parts)
        rows = [_blanked(item, tokens[first:end]).encode("utf-8") for first, end in parts]
        return Occlusion(rows, len(rows), (tokens, parts))

    def explanation(self, output: np.ndarray, variants: np.ndarray, occlusion: Occlusion) -> dict[str, Any]:
        tokens, parts = occlusion.parts
        top = int(output.argmax())
        drops = (output[top] - variants[:, top]).tolist()
        weighted = [
            {"text": token.text, "start": token.start, "end": token.end, "weight": drop}
            for (first, end), drop in zip(parts, drops, strict=True)
            for token in tokens[first:end]
        ]
        spans = len(parts) if len(parts) < len(tokens) else None
        return {"label": self.labels[top], "method": "occlusion", "spans": spans, "tokens": weighted}


def _parts(count: int, most: int) -> list[tuple[int, int]]:
    """`count` words as at most `most` runs [first, end) of consecutive words, as even in length as can be."""
    if count <= most:
        return [(i, i + 1) for i in range(count)]
    bounds = [round(i * count / most) for i in range(most + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _blanked(text: str, tokens: list[Token]) -> str:
    """`text` with the characters of `tokens` (in text order) replaced by spaces: the model no longer sees them."""
    pieces = []
    done = 0
    for token in tokens:
        start = max(token.start, done)
        pieces.append(text[done:start])
        pieces.append(" " * (token.end - start))
        done = max(done, token.end)
    pieces.append(text[done:])
    return "".join(pieces)
