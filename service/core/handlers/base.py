"""What one kind of model means to the service, in one class per kind.

A handler owns everything the service must know of its kind: the rows a batch is made of
and how pieces of rows join into one model call, the warm-up input, how many inputs one
request may carry, and the datatype the Open Inference Protocol uses for its input. Kinds
with routes of their own (images, texts) add their decoding and their answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from contract.card import ModelCard
from contract.kinds import Kind
from contract.savedmodel import LoadedModel
from service.settings import Settings


class Handler(ABC):
    """One loaded model version, seen through its kind."""

    kind: ClassVar[Kind]
    v2_datatype: ClassVar[str]  # the protocol's name for the input's element type (service.api.v2_codec)

    def __init__(self, model: LoadedModel, settings: Settings) -> None:
        self.model = model
        self.max_items = self.request_limit(settings)

    @property
    def card(self) -> ModelCard:
        return self.model.card

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def item_shape(self) -> list[int]:
        """The shape of one input row (the v2 input's shape without its batch dimension)."""
        return self.kind.item_shape(self.card.input)

    @staticmethod
    @abstractmethod
    def request_limit(settings: Settings) -> int:
        """The most inputs one request may carry."""

    @abstractmethod
    def concat(self, pieces: list[Any]) -> Any:
        """Join several callers' rows into one batch (the one copy of the inputs a batch needs)."""

    @abstractmethod
    def warm_up_rows(self, count: int) -> Any:
        """`count` rows of harmless input, to call the model once before it takes traffic."""

    @abstractmethod
    def rows_from_tensor(self, tensor: np.ndarray) -> Any:
        """A v2 input tensor (already checked against `item_shape` and the datatype) -> the rows `predict` takes."""

    def predict(self, rows: Any) -> np.ndarray:
        return self.model.predict(rows)
