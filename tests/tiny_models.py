"""Tiny SavedModels built per the artifact contract, whose answers depend on their input.

- image: labels red/green/blue; the probabilities follow the mean of each colour channel,
  so a solid red image is "red" and a swapped answer fails a test.
- text: labels negative/positive; P(positive) = sigmoid(#"good" - #"bad"), so texts with
  different counts get different answers. A text equal to "boom" makes the model call fail
  (a real TensorFlow error), and "slow" makes the call spin for about a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

IMAGE_SIZE = 8
IMAGE_LABELS = ["red", "green", "blue"]
TEXT_LABELS = ["negative", "positive"]


def _card(name: str, version: int, task: str, labels: list[str], input_spec: dict) -> dict:
    return {
        "name": name,
        "version": version,
        "task": task,
        "labels": labels,
        "input": input_spec,
        "evaluation": {"split": "none (a test model)", "accuracy": None},
        "dataset": {"name": "none", "sha256": "0" * 64},
        "training": {"command": "built by tests/tiny_models.py", "seconds": 0, "machine": "test"},
        "git_commit": "test",
    }


def _save(module: tf.Module, function, version_dir: Path, card: dict) -> Path:
    version_dir.mkdir(parents=True)
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": function})
    (version_dir / "model.json").write_text(json.dumps(card, indent=2))
    return version_dir


def build_image_model(version_dir: Path, size: int = IMAGE_SIZE) -> Path:
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")])
    def serve(images):
        means = tf.reduce_mean(tf.cast(images, tf.float32) / 255.0, axis=[1, 2])
        return {"probabilities": tf.nn.softmax(means * 20.0, axis=-1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "image-classification", IMAGE_LABELS,
                 {"height": size, "width": size})
    return _save(module, serve, version_dir, card)


def build_text_model(version_dir: Path, max_tokens: int = 64) -> Path:
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        tf.debugging.Assert(tf.logical_not(tf.reduce_any(tf.equal(text, "boom"))), ["asked to fail"])
        spin = tf.cond(tf.reduce_any(tf.equal(text, "slow")),
                       lambda: tf.while_loop(lambda i: i < 1_000_000, lambda i: i + 1, [0])[0],
                       lambda: tf.constant(0))
        tokens = tf.strings.split(tf.strings.lower(text))[:, :max_tokens]
        count = lambda word: tf.reduce_sum(tf.cast(tf.equal(tokens, word), tf.float32), axis=1)  # noqa: E731
        score = count("good") - count("bad") + tf.cast(spin, tf.float32) * 0.0
        positive = tf.sigmoid(score)
        return {"probabilities": tf.stack([1.0 - positive, positive], axis=1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "text-classification", TEXT_LABELS,
                 {"max_tokens": max_tokens})
    return _save(module, serve, version_dir, card)
