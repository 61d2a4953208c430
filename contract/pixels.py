"""An opened image -> the model's uint8 [H, W, 3] input: the one conversion training and serving share.

A model answers best on pixels made the way its training pixels were made, so the image
training job and the service both call `model_pixels`: the same orientation, the same
treatment of transparency and 16-bit grey, the same resampling. What reads the bytes, checks
them and words refusals stays with each side (service.core.imaging, training.image_data).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

_WHITE = (255, 255, 255)


def model_pixels(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Decode `image` (opened, not yet loaded) into a uint8 array of shape (height, width, 3).

    EXIF orientation is applied, any mode becomes 8-bit RGB (`to_rgb`), and the result is
    resized bilinearly. Read the image's size before calling this: a JPEG is decoded at a
    reduced scale where that still leaves at least twice the target size (`draft`), which is
    what keeps big photos cheap, and that changes `image.size`.
    """
    if image.format == "JPEG":
        image.draft("RGB", (width, height))
    rgb = to_rgb(ImageOps.exif_transpose(image))
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(rgb, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode Pillow opens (palette, grey, 16-bit, alpha, CMYK) -> 8-bit RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale: scale to 8 bits instead of letting convert() clip at 255.
        wide = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels carry arbitrary colours: show them on white, as a viewer would.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, _WHITE + (255,))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")
