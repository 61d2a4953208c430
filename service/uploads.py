"""Reading images out of a request: a raw `image/*` body, or multipart `file` parts.

The body-size limit is enforced by the app's body-limit middleware while the body is read,
so nothing here can buffer more than `SERVICE_MAX_BODY_BYTES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service.errors import BadRequest, InvalidImage, UnsupportedMediaType
from service.imaging import ACCEPTED, MEDIA_TYPES

MULTIPART = "multipart/form-data"
ACCEPTED_CONTENT_TYPES = ", ".join([*MEDIA_TYPES.values(), MULTIPART])


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_uploads(request: Request, max_files: int) -> list[Upload]:
    kind = media_type(request)
    if kind in MEDIA_TYPES.values():
        data = await request.body()
        if not data:
            raise InvalidImage("the body is empty (0 bytes)", accepted=ACCEPTED)
        return [Upload(filename=None, data=data)]
    if kind == MULTIPART:
        return await _read_multipart(request, max_files)
    raise UnsupportedMediaType(
        f"Content-Type {kind or '(none)'!r} is not accepted", accepted=ACCEPTED_CONTENT_TYPES
    )


async def _read_multipart(request: Request, max_files: int) -> list[Upload]:
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except HTTPException as exc:
        if exc.status_code == 413:  # the body limit: let it through as it is
            raise
        raise BadRequest(f"the multipart body cannot be read: {exc.detail}",
                         accepted=f"at most {max_files} 'file' parts") from None
    try:
        parts = form.getlist("file")
        if not parts:
            raise BadRequest("no 'file' part in the multipart body", accepted=f"1 to {max_files} 'file' parts")
        uploads = []
        for part in parts:
            if not isinstance(part, UploadFile):
                raise BadRequest("each 'file' part must be a file, not a text field", accepted=ACCEPTED)
            uploads.append(Upload(filename=part.filename, data=await part.read()))
        return uploads
    finally:
        await form.close()
