"""with_options: a wrapped call is rewritten to bf16; calls outside it, on its thread or another, stay float32.

Where the CPU has no bf16, oneDNN leaves the graph in float32 and there is nothing to see: those
tests need the CPU's bf16 (service.core.runtimes.cpu_bf16_flags).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf

from contract.savedmodel import SavedModel, load_model
from service.core.runtimes import cpu_bf16_flags
from service.shims.tensorflow_call_options import bf16_call_options, with_options
from tests.tiny_models import build_conv_image_model, colour_images

pytestmark = pytest.mark.skipif(not cpu_bf16_flags(), reason="this CPU has no bf16: oneDNN does not rewrite")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    return load_model(build_conv_image_model(tmp_path_factory.mktemp("artifacts") / "conv-image" / "1"))


def test_a_wrapped_call_runs_in_bf16_and_the_next_plain_call_in_float32(model: SavedModel) -> None:
    images, _ = colour_images(64)
    float32 = model.predict(images)
    bf16 = with_options(model.predict, bf16_call_options())(images)
    difference = np.abs(bf16 - float32).max()
    assert 0 < difference < 0.02  # rounded, as bf16 rounds, and no more
    np.testing.assert_array_equal(model.predict(images), float32)  # the thread's own options are back
    assert tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16") in (None, False)


def test_concurrent_plain_calls_on_another_thread_stay_float32(model: SavedModel) -> None:
    images, _ = colour_images(64)
    float32 = model.predict(images)
    bf16 = with_options(model.predict, bf16_call_options())
    wrong: list[str] = []

    def run(call, exact: bool) -> None:
        for _ in range(20):
            same = np.array_equal(call(images), float32)
            if same != exact:
                wrong.append("a plain call came back rounded" if exact else "a bf16 call came back exact")

    threads = [threading.Thread(target=run, args=(bf16, False)),
               threading.Thread(target=run, args=(model.predict, True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []

