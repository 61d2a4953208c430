"""The inference layer: one prediction, from a request's inputs to the answer's results.

The protocol edges (service.api.routes: /classify-image, /sentiment, the Open Inference
Protocol) only parse the request and write the answer; everything between goes through here,
the same way for every edge:

1. `version`: which loaded version answers (the one the request pins, else the model's latest);
2. `predict`: each input decoded by its kind's handler, on the event loop when it is small and on
   the decode pool when it is not (service.core.offload), each in a span of its own when tracing
   is on; the inputs joined into rows, with the input summary monitoring keeps; the rows
   submitted to that version's batcher; or `predict_tensor` for rows the edge decoded itself;
3. `Prediction.results`: the handler's answer for each input.

Nothing here knows HTTP: a caller without it (an offline scoring job) gets the same answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from service.core.handlers import Handler
from service.core.handlers.base import Decoded, Prepared
from service.core.offload import Offloader
from service.core.registry import ModelRegistry
from service.core.tracing import Tracing
from service.core.versions import ModelVersion

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Prediction:
    """A request's answer from one model version: an output row per input, and the largest batch it was in."""

    version: ModelVersion
    outputs: np.ndarray
    batch_size: int

    def results(self, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """Each input's answer, as its kind's handler words it."""
        return self.version.handler.results(self.outputs, items, **options)


class Inference:
    def __init__(self, registry: ModelRegistry, offloader: Offloader, tracing: Tracing) -> None:
        self.registry = registry
        self._offloader = offloader
        self._tracing = tracing

    def version(self, model: str | None, task: str, version: int | None = None) -> ModelVersion:
        """The loaded version that answers a request for `model` (else the task's default) and `version`."""
        return self.registry.get(model, task, version)

    async def predict(self, version: ModelVersion, items: Sequence[Any]) -> Prediction:
        """Decode `items` (the handler's kind of input: texts, encoded images) and run them as one request."""
        handler = version.handler
        if len(items) == 1:
            decoded = [await self._decode(handler, items[0], 0)]
        else:
            decoded = await asyncio.gather(*(self._decode(handler, item, i) for i, item in enumerate(items)))
        return await self._submit(version, handler.prepare(decoded))

    async def predict_tensor(self, version: ModelVersion, tensor: np.ndarray) -> Prediction:
        """Run rows the edge decoded itself (an Open Inference Protocol tensor, checked against the handler)."""
        return await self._submit(version, version.handler.from_tensor(tensor))

    async def offload(self, span: str, size: int, work: Callable[..., T], *args: object) -> T:
        """Run an edge's own decoding of `size` bytes (a v2 request body) where it costs least, in a span."""
        with self._tracing.span(span, **{"request.bytes": size}):
            return await self._offloader.run(size, work, *args)

    async def _decode(self, handler: Handler, item: Any, index: int) -> Decoded:
        cost = handler.decode_cost(item)
        if handler.decode_span is None:
            return await self._offloader.run(cost, handler.decode, item, index)
        name, attribute = handler.decode_span
        with self._tracing.span(name, **{attribute: cost}):
            return await self._offloader.run(cost, handler.decode, item, index)

    async def _submit(self, version: ModelVersion, prepared: Prepared) -> Prediction:
        summary = prepared.summary if version.monitor is not None else None
        answer = await version.batcher.submit(prepared.rows, inputs=summary)
        return Prediction(version, answer.outputs, answer.batch_size)
