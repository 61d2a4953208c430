"""decode_image: every mode and format a client may send, and every way bytes can be bad."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.core import imaging
from service.core.errors import InvalidImage, TooLarge
from service.core.imaging import decode_image as decode_with_size
from tests.service.images import PDF, SVG, encode, jpeg_rotated_by_exif, png_16bit_grey, png_bomb, solid

LIMIT = 40_000_000


def decode_image(data: bytes, height: int, width: int, max_pixels: int) -> np.ndarray:
    """The pixels alone (the sizes have tests of their own where monitoring uses them)."""
    return decode_with_size(data, height, width, max_pixels)[0]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_each_accepted_format_decodes_to_rgb_at_the_model_size(fmt: str) -> None:
    pixels = decode_image(solid("green", (33, 17), fmt), 8, 6, LIMIT)
    assert pixels.shape == (8, 6, 3) and pixels.dtype == np.uint8
    red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
    assert green > 200 and red < 60 and blue < 60


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "1"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    image = Image.new("RGB", (9, 9), (200, 200, 200)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    assert decode_image(encode(image, fmt), 4, 4, LIMIT).shape == (4, 4, 3)


def test_transparent_pixels_show_on_white() -> None:
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert decode_image(encode(clear, "PNG"), 4, 4, LIMIT).min() == 255


def test_16_bit_png_is_scaled_not_clipped() -> None:
    mid_grey = decode_image(png_16bit_grey(32768), 4, 4, LIMIT)
    assert np.all(mid_grey == 128)


def test_exif_orientation_is_applied() -> None:
    pixels = decode_image(jpeg_rotated_by_exif(), 40, 20, LIMIT).astype(int)
    # Rotated 90 degrees clockwise, the red left half becomes the top half.
    assert pixels.shape == (40, 20, 3)
    top, bottom = pixels[:20].mean(axis=(0, 1)), pixels[20:].mean(axis=(0, 1))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


def _noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _pillow_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


MODEL_SIZED_JPEGS = {
    "4:2:0": encode(_noise((24, 16)), "JPEG", subsampling=2),
    "4:4:4": encode(_noise((24, 16)), "JPEG", subsampling=0),
    "progressive": encode(_noise((24, 16)), "JPEG", progressive=True),
    "grey": encode(_noise((24, 16), "L"), "JPEG"),
}


@pytest.mark.parametrize("kind", MODEL_SIZED_JPEGS)
def test_a_jpeg_at_the_model_size_is_decoded_without_pillow_to_the_same_pixels(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = MODEL_SIZED_JPEGS[kind]
    expected = _pillow_rgb(data)
    monkeypatch.setattr(imaging.Image, "open", _no_pillow)
    assert np.array_equal(decode_image(data, 16, 24, LIMIT), expected)


def _no_pillow(*args: object, **kwargs: object) -> None:
    raise AssertionError("Pillow opened an image the fast path should have decoded")


def test_a_corrupted_model_sized_jpeg_gets_what_pillow_alone_would_give() -> None:
    """Bytes flipped anywhere: the same pixels as Pillow's, or a refusal where Pillow refuses."""
    data = MODEL_SIZED_JPEGS["4:2:0"]
    rng = np.random.default_rng(2)
    outcomes = set()
    for _ in range(200):
        corrupt = bytearray(data)
        for position in rng.integers(2, len(data), 3):
            corrupt[position] = int(rng.integers(0, 256))
        try:
            expected = _pillow_rgb(bytes(corrupt))
        except Exception:  # noqa: BLE001  # Pillow refuses it in one of several ways
            expected = None
        if expected is not None and expected.shape != (16, 24, 3):
            continue  # a flipped size field: Pillow's path resizes, as it always did
        try:
            got = decode_image(bytes(corrupt), 16, 24, LIMIT)
        except InvalidImage:
            assert expected is None
            outcomes.add("refused")
            continue
        assert expected is not None and np.array_equal(got, expected)
        outcomes.add("decoded")
    assert outcomes == {"refused", "decoded"}


def test_a_model_sized_jpeg_with_an_exif_orientation_is_still_turned() -> None:
    pixels = decode_image(jpeg_rotated_by_exif((40, 20)), 20, 40, LIMIT).astype(int)
    # Stored 40x20 (the model's size), shown 20x40: the red left half becomes the top, resized back to 40x20.
    top, bottom = pixels[:10].mean(axis=(0, 1)), pixels[10:].mean(axis=(0, 1))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]


def test_a_model_sized_cmyk_jpeg_becomes_rgb_as_pillow_makes_it() -> None:
    data = encode(_noise((8, 8), "CMYK"), "JPEG")
    assert np.array_equal(decode_image(data, 8, 8, LIMIT), _pillow_rgb(data))


def test_a_model_sized_jpeg_over_the_pixel_limit_is_refused() -> None:
    with pytest.raises(TooLarge, match="24x16 pixels; the limit is 100"):
        decode_image(MODEL_SIZED_JPEGS["4:2:0"], 16, 24, 100)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", 8, 8, LIMIT)


@pytest.mark.parametrize("data", [b"hello, not an image", SVG, PDF, encode(Image.new("RGB", (4, 4)), "TIFF")],
                         ids=["text", "svg", "pdf", "tiff"])
def test_unsupported_or_non_image_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidImage, match="not an image in a supported format") as error:
        decode_image(data, 8, 8, LIMIT)
    assert "PNG, JPEG" in (error.value.accepted or "")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("model_size", [8, 64], ids=["resized", "at-the-model-size"])
def test_truncated_images_are_refused(fmt: str, model_size: int) -> None:
    data = encode(_noise((64, 64)), fmt)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2], model_size, model_size, LIMIT)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
@pytest.mark.parametrize("keep", [8, 16, 40])
def test_an_image_cut_off_inside_its_header_is_refused(fmt: str, keep: int) -> None:
    data = encode(Image.new("RGB", (20, 20), (10, 200, 30)), fmt)
    with pytest.raises(InvalidImage):
        decode_image(data[:keep], 8, 8, LIMIT)


_HALF_A_JPEG = encode(_noise((64, 64)), "JPEG")[:1500]


@pytest.mark.parametrize(
    ("data", "limit"),
    [(b"", LIMIT), (solid("red", fmt="PNG")[:16], LIMIT), (b"hello", LIMIT), (_HALF_A_JPEG, LIMIT),
     (png_bomb(3000, 2000), 5_000_000), (png_bomb(), LIMIT)],
    ids=["empty", "header-cut", "not-an-image", "truncated", "over-the-limit", "bomb"],
)
def test_every_refusal_says_what_is_accepted(data: bytes, limit: int) -> None:
    with pytest.raises((InvalidImage, TooLarge)) as error:
        decode_image(data, 16, 24, limit)
    accepted = error.value.accepted or ""
    assert "PNG, JPEG" in accepted or f"at most {limit} pixels" in accepted


def test_an_image_of_exactly_the_pixel_limit_is_accepted() -> None:
    assert decode_image(solid("red", (10, 10)), 4, 4, 100).shape == (4, 4, 3)


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 10_000
    with pytest.raises(TooLarge, match="pixels; the limit is 40000000"):
        decode_image(bomb, 8, 8, LIMIT)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header() -> None:
    with pytest.raises(TooLarge, match="3000x2000 pixels; the limit is 5000000"):
        decode_image(png_bomb(3000, 2000), 8, 8, 5_000_000)
