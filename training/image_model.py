"""The image network: a small residual CNN (ResNet-9 layout) that takes raw uint8 pixels.

The layout follows the fast CIFAR-10 recipes (Page, "How to train your ResNet", 2018):
a stem, three stages that each double the width and halve the resolution, and two
residual blocks; most of the compute sits at low resolution, which is what a CPU
budget wants. Casting, scaling and per-channel normalisation are the first layers,
so the exported SavedModel accepts `uint8 [batch, H, W, 3]` as the contract requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

# A CPU-sized default: a quarter of the compute of the original ResNet-9 (64/128/256/512).
DEFAULT_WIDTHS = (32, 64, 128, 256)


def conv_bn(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def residual(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    shortcut = x
    x = conv_bn(x, filters, f"{name}a")
    x = conv_bn(x, filters, f"{name}b")
    return layers.Add(name=f"{name}_add")([shortcut, x])


def make_model(
    num_classes: int,
    height: int,
    width: int,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    name: str = "image_classifier",
) -> keras.Model:
    """uint8 images [batch, height, width, 3] -> class probabilities [batch, num_classes].

    `mean` and `std` are the training set's per-channel pixel statistics (0-255 scale).
    """
    if len(widths) != 4:
        raise ValueError(f"widths needs 4 values (stem, stage 1, 2, 3), got {list(widths)}")
    if min(height, width) < 8:
        raise ValueError(f"images must be at least 8x8 pixels (three 2x poolings), got {height}x{width}")
    inputs = keras.Input((height, width, 3), dtype="uint8", name="images")
    x = layers.Rescaling(1.0, name="to_float")(inputs)  # Rescaling casts uint8 -> the compute dtype
    x = layers.Normalization(
        mean=np.asarray(mean, "float32"),
        variance=np.square(np.asarray(std, "float32")),
        name="normalise",
    )(x)
    x = conv_bn(x, widths[0], "stem")
    x = conv_bn(x, widths[1], "stage1")
    x = layers.MaxPooling2D(name="stage1_pool")(x)
    x = residual(x, widths[1], "res1")
    x = conv_bn(x, widths[2], "stage2")
    x = layers.MaxPooling2D(name="stage2_pool")(x)
    x = conv_bn(x, widths[3], "stage3")
    x = layers.MaxPooling2D(name="stage3_pool")(x)
    x = residual(x, widths[3], "res3")
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    # Damped logits (x 0.125, as in the recipe) keep early training stable at a high learning rate.
    logits = layers.Rescaling(0.125, name="logit_scale")(logits)
    # Softmax in float32 even under mixed precision: the contract's output is float32.
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=name)


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """The same model, answering the mean of its predictions on the image and its mirror."""
    inputs = keras.Input(model.input_shape[1:], dtype="uint8", name="images")
    mirrored = layers.Lambda(lambda x: keras.ops.flip(x, axis=2), name="mirror")(inputs)
    outputs = layers.Average(name="probabilities")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_tta")
