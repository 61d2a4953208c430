"""common.export_saved_model: what it writes, and that it writes each variable once."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training.common import export_saved_model
from training.sentiment_model import make_ngram_classifier, make_text_model
from training.text_preprocessing import TokenIds


def _variables_bytes(version_dir: Path) -> int:
    return sum(p.stat().st_size for p in (version_dir / "variables").glob("variables.data-*"))


def test_each_variable_is_saved_once(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(200,))
    model = keras.Model(inputs, keras.layers.Dense(500, activation="softmax")(inputs))
    export_saved_model(model, tmp_path / "1", tf.TensorSpec([None, 200], tf.float32))
    weights_bytes = sum(w.size * 4 for w in model.get_weights())  # 400 KB of float32
    assert weights_bytes <= _variables_bytes(tmp_path / "1") < 1.2 * weights_bytes


def test_a_text_model_reloads_with_its_vocabulary(tmp_path: Path) -> None:
    token_ids = TokenIds(vocabulary_size=20, max_tokens=8)
    token_ids.adapt(tf.data.Dataset.from_tensor_slices(["good film", "bad film"]).batch(2))
    ngram = make_ngram_classifier(len(token_ids.vocabulary()), buckets=8, num_classes=2)
    weights = np.random.default_rng(0).normal(size=ngram.get_layer("ngram_weights").get_weights()[0].shape)
    ngram.get_layer("ngram_weights").set_weights([weights])
    text_model = make_text_model(token_ids, ngram)
    export_saved_model(text_model, tmp_path / "1", tf.TensorSpec([None], tf.string), lookups=[token_ids])
    serve = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    texts = tf.constant(["good film", "bad", "unknown words here", ""])
    reloaded = next(iter(serve(texts).values())).numpy()
    np.testing.assert_allclose(reloaded, text_model(texts).numpy(), atol=1e-6)
    assert not np.allclose(reloaded[0], reloaded[1])  # the vocabulary came along
