"""The network factory: raw uint8 in, float32 probabilities out, flip averaging symmetric."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.image_model import make_model, with_flip_averaging

WIDTHS = (4, 8, 8, 8)


def tiny(height: int = 12, width: int = 20) -> keras.Model:
    return make_model(3, height, width, mean=[120, 110, 100], std=[60, 60, 60], widths=WIDTHS)


def test_takes_uint8_images_and_answers_probabilities() -> None:
    model = tiny()
    images = np.random.default_rng(0).integers(0, 256, (4, 12, 20, 3), dtype=np.uint8)

    probabilities = keras.ops.convert_to_numpy(model(images, training=False))

    assert model.input.dtype == "uint8"
    assert probabilities.shape == (4, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_output_stays_float32_under_mixed_precision() -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = np.zeros((2, 12, 20, 3), np.uint8)
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"


def test_flip_averaging_answers_an_image_and_its_mirror_alike() -> None:
    model = with_flip_averaging(tiny())
    images = np.random.default_rng(1).integers(0, 256, (3, 12, 20, 3), dtype=np.uint8)

    direct = keras.ops.convert_to_numpy(model(images))
    mirrored = keras.ops.convert_to_numpy(model(images[:, :, ::-1]))

    np.testing.assert_allclose(direct, mirrored, atol=1e-6)
    assert np.abs(direct[0] - direct[1]).max() > 1e-6


@pytest.mark.parametrize(
    ("widths", "size", "match"), [((4, 8, 8), (12, 12), "4 values"), ((4, 8, 8, 8), (6, 12), "8x8")]
)
def test_bad_settings_are_refused(widths, size, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_model(3, *size, mean=[0, 0, 0], std=[1, 1, 1], widths=widths)
