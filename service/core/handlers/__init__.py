"""The handlers, one per kind of model, looked up by the card's `task`.

Adding a kind is a handler module and one `register` call (with its contract.kinds entry).
"""

from __future__ import annotations

from service.core.handlers.base import Decoded, Handler, Prepared
from service.core.handlers.image import EncodedImage, ImageHandler
from service.core.handlers.text import TextHandler

_HANDLERS: dict[str, type[Handler]] = {}


def register(handler: type[Handler]) -> type[Handler]:
    _HANDLERS[handler.kind.task] = handler
    return handler


def handler_for(task: str) -> type[Handler]:
    handler = _HANDLERS.get(task)
    if handler is None:
        raise LookupError(f"the service has no handler for task {task!r}; it serves {', '.join(sorted(_HANDLERS))}")
    return handler


register(ImageHandler)
register(TextHandler)

__all__ = ["Decoded", "EncodedImage", "Handler", "ImageHandler", "Prepared", "TextHandler", "handler_for",
           "register"]
