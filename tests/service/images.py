"""Image bytes in every shape a client may send, made with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(colour: str, size: tuple[int, int] = (20, 12), fmt: str = "PNG", mode: str = "RGB") -> bytes:
    image = Image.new("RGB", size, COLOURS[colour])
    if mode != "RGB":
        image = image.convert(mode)
    return encode(image, fmt)


def png_16bit_grey(value: int, size: tuple[int, int] = (10, 10)) -> bytes:
    array = np.full(size[::-1], value, dtype=np.uint16)
    return encode(Image.fromarray(array), "PNG")


def jpeg_rotated_by_exif(size: tuple[int, int] = (40, 20)) -> bytes:
    """A landscape JPEG whose EXIF says 'rotate 90 degrees': left half red, right half blue."""
    image = Image.new("RGB", size, COLOURS["red"])
    image.paste(COLOURS["blue"], (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    return encode(image, "JPEG", exif=exif.tobytes(), quality=95)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header declares width x height pixels of a compressible zero image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 64)  # only a few rows: the file stays tiny
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
