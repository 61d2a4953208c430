"""Image bytes -> the model's uint8 [H, W, 3] input: checked, decoded, converted to RGB, resized.

The conversion itself is the one training uses (contract.pixels); this module reads and
checks the bytes, and words every refusal.

A JPEG already at the model's size (what a client that knows the model sends) is decoded by
libjpeg-turbo through simplejpeg, to the same pixels without Pillow's per-image work
(docs/decisions/0007-simplejpeg-fast-path.md); every other image goes through Pillow. Small
inputs are decoded on the event loop, larger ones on the decode pool (service.core.offload).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from contract.pixels import model_pixels
from service.core.errors import InvalidImage, TooLarge

# Pillow format name -> the Content-Type a client sends for it.
MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
}
ACCEPTED = "PNG, JPEG, WebP, BMP or GIF images"
_JPEG_START = b"\xff\xd8"
# EXIF and XMP, either of which may carry an orientation, travel in APP1 segments. The two bytes
# cannot occur in entropy-coded data; elsewhere a chance match only costs Pillow's slower path.
_APP1 = b"\xff\xe1"


def decode_image(data: bytes, height: int, width: int, max_pixels: int) -> tuple[np.ndarray, int, int]:
    """One image -> uint8 pixels of shape (height, width, 3), and the width and height the image
    declared (for monitoring; before any resizing)."""
    if not data:
        raise InvalidImage("the image is empty (0 bytes)", accepted=ACCEPTED)
    if data.startswith(_JPEG_START) and (pixels := _decode_jpeg_at(data, height, width, max_pixels)) is not None:
        return pixels, width, height
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is the check; Pillow's bomb warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES))
    except UnidentifiedImageError:
        raise InvalidImage("the data is not an image in a supported format", accepted=ACCEPTED) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # recognised, but its header is cut off
        raise InvalidImage(f"the image header is truncated or corrupt ({exc})", accepted=ACCEPTED) from None
    except Image.DecompressionBombError:  # Pillow's own, far higher, limit
        raise _too_many_pixels("far too many", max_pixels) from None
    if image.width * image.height > max_pixels:  # refused from the header, before decoding
        raise _too_many_pixels(f"{image.width}x{image.height}", max_pixels)
    source_format = image.format
    declared_width, declared_height = image.size  # before model_pixels() may draft a JPEG smaller
    try:
        return model_pixels(image, height, width), declared_width, declared_height
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(
            f"the {source_format} image is truncated or corrupt ({exc})", accepted=ACCEPTED
        ) from None


def _decode_jpeg_at(data: bytes, height: int, width: int, max_pixels: int) -> np.ndarray | None:
    """A YCbCr or grey JPEG of exactly height x width with no orientation to apply, decoded; else None.

    None hands the image to Pillow, which decodes everything else and words every refusal
    (simplejpeg raises ValueError for corrupt or truncated data, as for a recoverable error).
    """
    try:
        rows, columns, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if ((rows, columns) != (height, width) or rows * columns > max_pixels
                or colorspace not in ("YCbCr", "Gray") or _APP1 in data):
            return None
        pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        return None
    return pixels


def _too_many_pixels(declared: str, max_pixels: int) -> TooLarge:
    return TooLarge(f"the image declares {declared} pixels; the limit is {max_pixels}",
                           accepted=f"images of at most {max_pixels} pixels (width x height)")

