"""The inference layer: one prediction, from a request's inputs to the answer's results.

The protocol edges (service.api.routes: /classify-image, /sentiment, the Open Inference
Protocol) only parse the request and write the answer; everything between goes through here,
the same way for every edge:

1. `route`: which loaded version answers (the one the request pins, else the one the model's
   rollout policy chooses for this caller: service.rollout; with no policy, the newest), and
   which one gets a shadow copy;
2. `predict`: each input decoded by its kind's handler, on the event loop when it is small and on
   the decode pool when it is not (service.core.offload), each in a span of its own when tracing
   is on; the inputs joined into rows, with the input summary monitoring keeps; the rows
   submitted to that version's batcher; or `predict_tensor` for rows the edge decoded itself;
3. `Prediction.results`: the handler's answer for each input, with its explanation when the request
   asked for one (service.core.explaining: variants of each input, in the same batches).

While a rollout has a candidate in traffic, each answer also counts in its figures (time in the
batcher, labels, failures), and a shadow copy of the rows goes to the candidate after the client
has its answer.

Nothing here knows HTTP: a caller without it (an offline scoring job) gets the same answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from service.core import explaining
from service.core.handlers import Handler
from service.core.handlers.base import Decoded, Prepared
from service.core.offload import Offloader
from service.core.registry import ModelRegistry
from service.core.tracing import Tracing
from service.core.versions import ModelVersion
from service.rollout.rollouts import Route

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Prediction:
    """A request's answer from one model version: an output row per input, and the largest batch it was in."""

    version: ModelVersion
    outputs: np.ndarray
    batch_size: int
    explanations: list[dict[str, Any]] | None = None

    def results(self, items: Sequence[Any], **options: Any) -> list[dict[str, Any]]:
        """Each input's answer, as its kind's handler words it, with its explanation if one was asked for."""
        results = self.version.handler.results(self.outputs, items, **options)
        if self.explanations is not None:
            for result, explanation in zip(results, self.explanations, strict=True):
                result["explanation"] = explanation
        return results


class Inference:
    def __init__(self, registry: ModelRegistry, offloader: Offloader, tracing: Tracing) -> None:
        self.registry = registry
        self._offloader = offloader
        self._tracing = tracing

    def route(self, model: str | None, task: str, version: int | None = None,
              routing_key: str | None = None) -> Route:
        """Who answers a request for `model` (else the task's default): the `version` it pins, whatever any
        rollout policy says, or else the one the policy picks for the caller `routing_key`."""
        if version is not None:
            return Route(self.registry.get(model, task, version))
        return self.registry.rollouts.route(self.registry.find(model, task), routing_key)

    async def predict(self, route: Route, items: Sequence[Any], explain: bool = False) -> Prediction:
        """Decode `items` (the handler's kind of input: texts, encoded images) and run them as one request;
        with `explain`, each answer's explanation too."""
        handler = route.version.handler
        if explain:
            explaining.check_explainable(handler, len(items))
        if len(items) == 1:
            decoded = [await self._decode(handler, items[0], 0)]
        else:
            decoded = await asyncio.gather(*(self._decode(handler, item, i) for i, item in enumerate(items)))
        prepared = handler.prepare(decoded)
        if not explain:
            return await self._submit(route, prepared)
        return await self._explained(route, prepared, items, decoded)

    async def predict_tensor(self, route: Route, tensor: np.ndarray, explain: bool = False) -> Prediction:
        """Run rows the edge decoded itself (an Open Inference Protocol tensor, checked against the handler)."""
        handler = route.version.handler
        prepared = handler.from_tensor(tensor)
        if not explain:
            return await self._submit(route, prepared)
        explaining.check_explainable(handler, len(tensor))
        items, decoded = handler.explain_inputs(tensor)
        return await self._explained(route, prepared, items, decoded)

    async def _explained(self, route: Route, prepared: Prepared, items: Sequence[Any],
                         decoded: Sequence[Decoded]) -> Prediction:
        """The request's prediction, and each input's explanation from its variants (service.core.explaining)."""
        handler = route.version.handler
        # Finding a long text's words takes milliseconds: like decoding, it leaves the loop when large.
        cost = sum(handler.explain_cost(item) for item in items)
        plans = await self._offloader.run(cost, explaining.occlusions, handler, items, decoded)
        explaining.check_fits(route.version.batcher.queue_limit, plans)
        variants = explaining.variant_rows(handler, plans)
        if variants is None:
            prediction = await self._submit(route, prepared)
            variant_outputs = None
        else:
            # Together, so that the request's rows and its variants can share batches; the variants
            # go after every plain request's rows (service.core.batcher's low priority).
            prediction, answer = await asyncio.gather(
                self._submit(route, prepared), route.version.batcher.submit(variants, low_priority=True)
            )
            variant_outputs = answer.outputs
        found = explaining.explanations(handler, prediction.outputs, variant_outputs, plans)
        return dataclasses.replace(prediction, explanations=found)

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

    async def _submit(self, route: Route, prepared: Prepared) -> Prediction:
        version, rollout = route.version, route.rollout
        summary = prepared.summary if version.monitor is not None else None
        if rollout is None:
            answer = await version.batcher.submit(prepared.rows, inputs=summary)
            return Prediction(version, answer.outputs, answer.batch_size)
        started = time.perf_counter()
        try:
            answer = await version.batcher.submit(prepared.rows, inputs=summary)
        except Exception:
            rollout.failed(version, time.perf_counter() - started)
            raise
        rollout.answered(version, time.perf_counter() - started, answer.outputs)
        if route.shadow is not None:
            rollout.copy(version, route.shadow, prepared.rows, prepared.summary, answer.outputs)
        return Prediction(version, answer.outputs, answer.batch_size)
