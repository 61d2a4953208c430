"""What can go wrong with a request, in the service's own terms; no HTTP here.

Each error carries a message for the client and, where it helps, what is accepted instead.
service/api/errors.py is the one table that turns these into statuses and wire shapes.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service cannot answer as asked."""

    def __init__(self, message: str, accepted: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.accepted = accepted

    def about(self, subject: str) -> ServiceError:
        """The same error, its message prefixed with what it concerns (e.g. "image 2 (cat.png)")."""
        return type(self)(f"{subject}: {self.message}", self.accepted)


class MalformedRequest(ServiceError):
    """The body cannot be parsed as what the route takes (not JSON, broken multipart, bad framing)."""


class InvalidImage(ServiceError):
    """Bytes that are not an image in a supported format, or a truncated or corrupt one."""


class Unauthorized(ServiceError):
    """A missing or wrong API key."""


class NotFound(ServiceError):
    """No such model, version or file."""


class TooLarge(ServiceError):
    """A body, an image's pixel count or a number of parts over its limit."""


class UnsupportedMediaType(ServiceError):
    """A content type the route does not take."""


class InvalidInput(ServiceError):
    """Well-formed input with wrong types, shapes or values."""


class NotReady(ServiceError):
    """The service is still loading its models, or is shutting down."""


class Overloaded(ServiceError):
    """The model's queue cannot take these inputs now; retry shortly."""


class ShuttingDown(ServiceError):
    """The model version is being retired or the service is stopping; retry (another replica or version)."""


class DeadlineExceeded(ServiceError):
    """The inputs were not answered within the request timeout."""


class InferenceFailed(ServiceError):
    """The model call for the batch these inputs were in failed."""
