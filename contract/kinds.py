"""Kinds of model: what a card's `task` means for the SavedModel's signature and the card's input.

The registry is open: a new kind is one `register(Kind(...))` call, here or in a plugin, and
every card, loader and check below follows it. The service keeps its own, HTTP-free, handler
per kind (service/core/handlers/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf
from pydantic import BaseModel, ConfigDict, Field

from contract.tokens import TokenizerSpec


class ImageInput(BaseModel):
    """An image model's input: RGB pixels resized to height x width."""

    model_config = ConfigDict(extra="allow")
    height: int = Field(gt=0)
    width: int = Field(gt=0)


class TextInput(BaseModel):
    """A text model's input: raw UTF-8, tokenised inside the graph, at most `max_tokens` kept; `tokenizer`
    (optional) declares which words the graph sees, so that answers can be explained word by word."""

    model_config = ConfigDict(extra="allow")
    max_tokens: int = Field(gt=0)
    tokenizer: TokenizerSpec | None = None


@dataclass(frozen=True)
class Kind:
    """One kind of model.

    `item_shape` gives the shape of one input row from the card's input section; `None`
    marks a dimension the signature may leave open.
    """

    task: str
    input_name: str
    dtype: tf.DType
    card_input: type[BaseModel]
    item_shape: Callable[[Any], list[int]]


IMAGE = Kind(
    task="image-classification",
    input_name="images",
    dtype=tf.uint8,
    card_input=ImageInput,
    item_shape=lambda spec: [spec.height, spec.width, 3],
)
TEXT = Kind(
    task="text-classification",
    input_name="text",
    dtype=tf.string,
    card_input=TextInput,
    item_shape=lambda spec: [],
)

_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make `kind.task` a valid card task; registering the same task twice is a mistake."""
    if kind.task in _KINDS and _KINDS[kind.task] != kind:
        raise ValueError(f"task {kind.task!r} is already registered")
    _KINDS[kind.task] = kind
    return kind


def get(task: str) -> Kind:
    try:
        return _KINDS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(sorted(_KINDS))}") from None


def tasks() -> list[str]:
    return sorted(_KINDS)


register(IMAGE)
register(TEXT)
