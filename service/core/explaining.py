"""Explanations by occlusion: what the predicted label's probability loses when a part of the input is
left out, asked of the same model version in the same batches as the answer itself.

For each input to explain, its handler makes variants (service.core.handlers: a text with one word,
or one span of words, blanked; an image with one cell of a grid filled with mid-grey). The variants
go to the version's batcher as low-priority rows (service.core.batcher), alongside the request's own
rows, so that plain requests are never queued behind them and both share batches. A part's weight
is the predicted label's probability on the input minus its probability on the variant without that
part: positive pushes toward the label, negative away from it.

Occlusion needs nothing from the model but its answers, so every version can explain whose words
(or pixels) are known, and a weight is what the model really does without that part. Its cost is a
model row per part: the limits (SERVICE_EXPLAIN_*) keep an explained request well inside the queue
limit. docs/explanations.md says what the weights mean, and what they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.errors import InvalidInput, TooLarge
from service.core.handlers import Handler
from service.core.handlers.base import Decoded, Occlusion


def check_explainable(handler: Handler, count: int) -> None:
    """Refuse, in words, a request this version cannot explain: a kind or a card that cannot, or too many inputs."""
    card = handler.card
    refusal = handler.explain_refusal()
    if refusal is not None:
        raise InvalidInput(f"{card.name} version {card.version} cannot explain: {refusal}",
                           accepted="explain only with a model version that can (GET /models shows `explains`)")
    if count > handler.max_explained:
        raise InvalidInput(f"{count} inputs to explain; one request explains at most {handler.max_explained}",
                           accepted=f"at most {handler.max_explained} inputs with explain, or explain off")


def check_fits(queue_limit: int, plans: list[Occlusion]) -> None:
    """Refuse an explanation that could never be queued: more variants than the queue limit (which holds for
    low-priority rows on their own: service.core.batcher)."""
    variants = sum(plan.count for plan in plans)
    if variants > queue_limit:
        raise TooLarge(f"explaining these inputs takes {variants} model rows, over the queue limit of {queue_limit}",
                       accepted="fewer or shorter inputs with explain, or explain off")


def occlusions(handler: Handler, items: Sequence[Any], decoded: Sequence[Decoded]) -> list[Occlusion]:
    return [handler.occlusions(item, d) for item, d in zip(items, decoded, strict=True)]


def variant_rows(handler: Handler, plans: list[Occlusion]) -> Any:
    """Every input's variants joined into one piece of rows (None when no input has any)."""
    pieces = [plan.rows for plan in plans if plan.count]
    if not pieces:
        return None
    return pieces[0] if len(pieces) == 1 else handler.concat(pieces)


def explanations(handler: Handler, outputs: np.ndarray, variants: np.ndarray | None,
                 plans: list[Occlusion]) -> list[dict[str, Any]]:
    """Each input's explanation, from the request's output rows and its variants' (in `plans` order)."""
    result = []
    start = 0
    for output, plan in zip(outputs, plans, strict=True):
        own = variants[start : start + plan.count] if variants is not None else outputs[:0]
        result.append(handler.explanation(output, own, plan))
        start += plan.count
    return result
