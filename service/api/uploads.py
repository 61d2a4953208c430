"""Reading images out of a request: a raw `image/*` body, or multipart `file` parts.

The body-size limit is enforced by service.api.body_limit while the body streams in, so
nothing here can buffer more than `SERVICE_MAX_BODY_BYTES`. Multipart is parsed with
python-multipart directly: every part named `file` is an image whether or not its client
gave it a file name, and parts stay in memory (they are bounded) instead of temp files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.core.errors import InvalidImage, MalformedRequest, UnsupportedMediaType
from service.core.imaging import ACCEPTED, MEDIA_TYPES

MULTIPART = "multipart/form-data"
ACCEPTED_CONTENT_TYPES = ", ".join([*MEDIA_TYPES.values(), MULTIPART])


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def content_type(request: Request) -> tuple[str, dict[bytes, bytes]]:
    """The request's media type, lower-cased ("" when absent), and its parameters."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    return kind.decode("latin-1").lower(), options


async def read_uploads(request: Request, max_files: int) -> list[Upload]:
    media_type, options = content_type(request)
    if media_type in MEDIA_TYPES.values():
        data = await request.body()
        if not data:
            raise InvalidImage("the body is empty (0 bytes)", accepted=ACCEPTED)
        return [Upload(filename=None, data=data)]
    if media_type == MULTIPART:
        boundary = options.get(b"boundary")
        if not boundary:
            raise MalformedRequest("the multipart Content-Type has no boundary", accepted=ACCEPTED_CONTENT_TYPES)
        return await _read_multipart(request, boundary, max_files)
    raise UnsupportedMediaType(
        f"Content-Type {media_type or '(none)'!r} is not accepted", accepted=ACCEPTED_CONTENT_TYPES
    )


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)


async def _read_multipart(request: Request, boundary: bytes, max_files: int) -> list[Upload]:
    parts: list[_Part] = []
    header = [b"", b""]

    def on_part_begin() -> None:
        if len(parts) == max_files:
            raise MalformedRequest(f"more than {max_files} parts", accepted=f"1 to {max_files} 'file' parts")
        parts.append(_Part())

    def on_header_end() -> None:
        parts[-1].headers[header[0].lower()] = header[1]
        header[0] = header[1] = b""

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda data, start, end: parts[-1].data.extend(data[start:end]),
        "on_header_field": lambda data, start, end: header.__setitem__(0, header[0] + data[start:end]),
        "on_header_value": lambda data, start, end: header.__setitem__(1, header[1] + data[start:end]),
        "on_header_end": on_header_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedRequest(f"the multipart body is malformed ({exc})", accepted=ACCEPTED_CONTENT_TYPES) from None

    uploads = []
    for part in parts:
        _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
        if disposition.get(b"name") == b"file":
            filename = disposition.get(b"filename")
            uploads.append(Upload(filename.decode("utf-8", "replace") if filename else None, bytes(part.data)))
    if not uploads:
        raise MalformedRequest("no 'file' part in the multipart body", accepted=f"1 to {max_files} 'file' parts")
    return uploads
