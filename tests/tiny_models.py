"""Tiny SavedModels built per the artifact contract, whose answers depend on their input.

- image: labels red/green/blue; the probabilities are softmax(20 * version * mean of each
  colour channel), so a solid red image is "red" and a swapped answer fails a test.
- text: labels negative/positive; P(positive) = sigmoid(version * (#"good" - #"bad")), counting
  the words the real models' rules make (contract.tokens; the card declares them), so texts with
  different counts get different answers. A text equal to "boom" makes the model
  call fail (a real TensorFlow error), and each text equal to "slow" makes the call spin for
  about a second more.

The version number scales the answers, so that version 2 answers differently from version 1
and a test can tell, from an answer alone, which version gave it (`expected_positive`,
`expected_image_probabilities`). `build_mismatched_model` makes folders that break the
contract in one named way each, and a version whose warm-up call fails.

- conv image: the image model's colour rule plus a small convolution and dense layer, which
  oneDNN's bf16 rewrite converts (the plain image model has neither), so that a test can see a
  bf16 runtime change its outputs slightly; `add_verification_sample` gives a version the
  sample the runtime is checked on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from contract.tokens import Tokenizer, TokenizerSpec
from training.text_preprocessing import normalize

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


def expected_positive(text: str, version: int) -> float:
    """What tiny-text `version` answers as P(positive) for `text` (up to float32 rounding)."""
    words = [token.text for token in Tokenizer(TokenizerSpec(), max_tokens=64).tokens(text)]
    return float(1 / (1 + np.exp(-version * (words.count("good") - words.count("bad")))))


def expected_image_probabilities(rgb: tuple[int, int, int], version: int) -> list[float]:
    """What tiny-image `version` answers for an image of one solid colour."""
    logits = 20.0 * version * np.array(rgb, dtype=np.float64) / 255.0
    exp = np.exp(logits - logits.max())
    return (exp / exp.sum()).tolist()


def build_image_model(version_dir: Path, size: int = IMAGE_SIZE) -> Path:
    module = tf.Module()
    scale = 20.0 * int(version_dir.name)

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")])
    def serve(images):
        means = tf.reduce_mean(tf.cast(images, tf.float32) / 255.0, axis=[1, 2])
        return {"probabilities": tf.nn.softmax(means * scale, axis=-1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "image-classification", IMAGE_LABELS,
                 {"height": size, "width": size})
    return _save(module, serve, version_dir, card)


def build_text_model(version_dir: Path, max_tokens: int = 64, fail_always: bool = False, fails_on: str = "boom",
                     labels: list[str] = TEXT_LABELS, declare_tokenizer: bool = True) -> Path:
    """`fail_always`: a version that loads and matches its card, but whose every call fails (its warm-up too).
    `fails_on`: the text that makes a call fail. `labels`: the card's names for the two outputs (a card
    that swaps them makes a version whose answers are inverted while its output indices are the same).
    `declare_tokenizer` False: a card without input.tokenizer, as older cards are (it cannot explain)."""
    module = tf.Module()
    scale = float(version_dir.name)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        tf.debugging.Assert(tf.logical_not(tf.reduce_any(tf.equal(text, fails_on))), ["asked to fail"])
        tf.debugging.Assert(tf.constant(not fail_always), ["this version always fails"])
        spins = 1_000_000 * tf.reduce_sum(tf.cast(tf.equal(text, "slow"), tf.int32))
        spin = tf.while_loop(lambda i: i < spins, lambda i: i + 1, [0])[0]
        tokens = tf.strings.split(normalize(text, social=False))[:, :max_tokens]
        count = lambda word: tf.reduce_sum(tf.cast(tf.equal(tokens, word), tf.float32), axis=1)  # noqa: E731
        score = count("good") - count("bad") + tf.cast(spin, tf.float32) * 0.0
        positive = tf.sigmoid(score * scale)
        return {"probabilities": tf.stack([1.0 - positive, positive], axis=1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "text-classification", labels,
                 {"max_tokens": max_tokens}
                 | ({"tokenizer": TokenizerSpec(keep="head").model_dump()} if declare_tokenizer else {}))
    return _save(module, serve, version_dir, card)


def build_quadrant_image_model(version_dir: Path, size: int = IMAGE_SIZE) -> Path:
    """An image model that looks only at the top-left quadrant: the tiny image model's colour rule on it alone."""
    module = tf.Module()
    half = size // 2

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")])
    def serve(images):
        means = tf.reduce_mean(tf.cast(images[:, :half, :half], tf.float32) / 255.0, axis=[1, 2])
        return {"probabilities": tf.nn.softmax(means * 20.0, axis=-1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "image-classification", IMAGE_LABELS,
                 {"height": size, "width": size})
    return _save(module, serve, version_dir, card)


def build_conv_image_model(version_dir: Path, size: int = IMAGE_SIZE) -> Path:
    """An image model with a convolution and a matmul: its colour means decide the class, and the
    learned-looking layers (fixed random weights) add a term that bf16 arithmetic rounds."""
    module = tf.Module()
    rng = np.random.default_rng(int(version_dir.name))
    module.kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 3, 16)).astype(np.float32))
    module.dense = tf.Variable(rng.normal(0, 0.5, (16, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")])
    def serve(images):
        pixels = tf.cast(images, tf.float32) / 255.0
        features = tf.nn.relu(tf.nn.conv2d(pixels, module.kernel, 1, "SAME"))
        learned = tf.matmul(tf.reduce_mean(features, axis=[1, 2]), module.dense)
        logits = 8.0 * tf.reduce_mean(pixels, axis=[1, 2]) + learned
        return {"probabilities": tf.nn.softmax(logits, axis=-1)}

    module.serve = serve
    card = _card(version_dir.parent.name, int(version_dir.name), "image-classification", IMAGE_LABELS,
                 {"height": size, "width": size})
    return _save(module, serve, version_dir, card)


def colour_images(count: int, size: int = IMAGE_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` noisy images, each with one colour channel raised, and that channel as its label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = rng.integers(0, 160, (count, size, size, 3))
    images[np.arange(count), :, :, labels] += 96
    return images.astype(np.uint8), labels


def add_verification_sample(version_dir: Path, inputs: np.ndarray | list[str], labels: np.ndarray,
                            perturb: float = 0.0) -> Path:
    """Give a built version a verification sample: its own float32 outputs on `inputs` as the reference,
    as training writes one. `perturb`: the share of rows whose reference is moved to another class (a
    reference no faster runtime can agree with), to test that verification refuses one."""
    from contract.savedmodel import load_model
    from contract.verification import write_sample

    model = load_model(version_dir)
    batch = inputs if isinstance(inputs, np.ndarray) else [text.encode("utf-8") for text in inputs]
    reference = model.predict(batch)
    moved = int(round(perturb * len(reference)))
    reference[:moved] = np.roll(reference[:moved], 1, axis=1)  # each moved row's top-1 is another class
    section = write_sample(version_dir, inputs, labels, reference, split="test",
                           source="made by tests/tiny_models.py" + (f", {moved} references moved" if moved else ""))
    card = json.loads((version_dir / "model.json").read_text())
    (version_dir / "model.json").write_text(json.dumps({**card, "verification": section}, indent=2))
    return version_dir


MISMATCHES = ("input name", "input dtype", "no serving_default", "image size")


def build_mismatched_model(version_dir: Path, problem: str) -> Path:
    """An image model folder whose SavedModel breaks its card's contract in the one way `problem` names."""
    module = tf.Module()
    name = "pixels" if problem == "input name" else "images"
    dtype = tf.float32 if problem == "input dtype" else tf.uint8
    size = IMAGE_SIZE * 2 if problem == "image size" else IMAGE_SIZE  # the card still says IMAGE_SIZE

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], dtype, name=name)])
    def serve(images):
        means = tf.reduce_mean(tf.cast(images, tf.float32) / 255.0, axis=[1, 2])
        return {"probabilities": tf.nn.softmax(means, axis=-1)}

    module.serve = serve
    key = "predict" if problem == "no serving_default" else "serving_default"
    version_dir.mkdir(parents=True)
    tf.saved_model.save(module, str(version_dir), signatures={key: serve})
    card = _card(version_dir.parent.name, int(version_dir.name), "image-classification", IMAGE_LABELS,
                 {"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    (version_dir / "model.json").write_text(json.dumps(card, indent=2))
    return version_dir
