"""What one kind of model means to the service, in one class per kind.

A handler owns everything about its kind between the protocol edge and the batcher, in a
handful of verbs: how many inputs one request may carry (`request_limit`), how one input
becomes model rows and the values monitoring keeps of it (`decode`), how several callers'
rows join into one model call (`concat`), the warm-up rows, how an Open Inference Protocol
tensor becomes rows (`from_tensor`), and what each input's answer says (`results`). Kinds that
can explain an answer also say which variants of an input to ask the model about (`occlusions`)
and what their answers mean (`explanation`): service.core.explaining.

A handler is built per loaded version from its card; it holds no model and no batcher
(service.core.versions.ModelVersion holds the three together). Kinds served only over the
Open Inference Protocol need `concat`, `warm_up_rows` and `from_tensor`; `decode` and
`results` are for kinds with routes of their own (images, texts).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from contract.card import ModelCard
from contract.kinds import Kind
from service.core.monitoring import InputSummary
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Decoded:
    """One input, decoded: its model rows, and its value of each of the handler's `signals`."""

    rows: Any
    signals: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Occlusion:
    """One input's variants, each with a part of it left out, and what the handler needs to word the weights."""

    rows: Any
    count: int
    parts: Any


@dataclass(frozen=True, slots=True)
class Prepared:
    """A whole request ready for the batcher: every input's rows joined, and its input summary."""

    rows: Any
    summary: InputSummary


class Handler(ABC):
    """One kind of model, for one loaded version's card."""

    kind: ClassVar[Kind]
    v2_datatype: ClassVar[str]  # the protocol's name for the input's element type (service.api.v2_codec)
    signals: ClassVar[tuple[str, ...]] = ()  # the input summaries monitoring keeps (service.core.monitoring)
    # With tracing on, each input's decode gets a span of this name, with its `decode_cost` as this attribute.
    decode_span: ClassVar[tuple[str, str] | None] = None
    # The Open Inference Protocol outputs `explanation_tensors` adds, for kinds that explain.
    v2_explanation_outputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, card: ModelCard, settings: Settings) -> None:
        self.card = card
        self.labels = card.labels
        self.max_items = self.request_limit(settings)
        self.max_explained = settings.explain_max_items

    def item_shape(self) -> list[int]:
        """The shape of one input row (the v2 input's shape without its batch dimension)."""
        return self.kind.item_shape(self.card.input)

    @staticmethod
    @abstractmethod
    def request_limit(settings: Settings) -> int:
        """The most inputs one request may carry."""

    @abstractmethod
    def concat(self, pieces: list[Any]) -> Any:
        """Join several pieces of rows into one batch (the one copy of the inputs a batch needs)."""

    @abstractmethod
    def warm_up_rows(self, count: int) -> Any:
        """`count` rows of harmless input, to call the model once before it takes traffic."""

    @abstractmethod
    def from_tensor(self, tensor: np.ndarray) -> Prepared:
        """A v2 input tensor (already checked against `item_shape` and the datatype) -> rows and summary."""

    def decode_cost(self, item: Any) -> int:
        """How much work `decode` is, in bytes: above a few KB it runs off the event loop (service.core.offload)."""
        return 0

    def decode(self, item: Any, index: int) -> Decoded:
        """One input of a request (the `index`th) -> its rows; errors name the input."""
        raise NotImplementedError(f"{type(self).__name__} serves its kind over the Open Inference Protocol only")

    def results(self, outputs: np.ndarray, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """Each input's answer, in order, from its output row."""
        raise NotImplementedError(f"{type(self).__name__} serves its kind over the Open Inference Protocol only")

    def explain_refusal(self) -> str | None:
        """Why this version cannot explain its answers, or None when it can."""
        return f"{self.kind.task} models do not explain their answers"

    def explain_inputs(self, tensor: np.ndarray) -> tuple[list[Any], list[Decoded]]:
        """An Open Inference Protocol tensor's rows as `occlusions` takes them: (items, decoded)."""
        raise NotImplementedError(f"{type(self).__name__} does not explain")

    def explanation_tensors(self, explanations: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """A request's explanations as the Open Inference Protocol's extra output tensors, by name."""
        raise NotImplementedError(f"{type(self).__name__} does not explain")

    def explain_cost(self, item: Any) -> int:
        """How much work `occlusions` is, in bytes (as for `decode_cost`); 0: on the event loop."""
        return 0

    def occlusions(self, item: Any, decoded: Decoded) -> Occlusion:
        """The variants of one input whose answers explain its own."""
        raise NotImplementedError(f"{type(self).__name__} does not explain")

    def explanation(self, output: np.ndarray, variants: np.ndarray, occlusion: Occlusion) -> dict[str, Any]:
        """One input's explanation, from its output row and its variants' output rows."""
        raise NotImplementedError(f"{type(self).__name__} does not explain")

    def prepare(self, decoded: Sequence[Decoded]) -> Prepared:
        """A request's decoded inputs joined into one piece of rows and one input summary."""
        rows = decoded[0].rows if len(decoded) == 1 else self.concat([d.rows for d in decoded])
        summary = {signal: [d.signals[i] for d in decoded] for i, signal in enumerate(self.signals)}
        return Prepared(rows, summary)
