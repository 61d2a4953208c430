"""The n-gram member and weighted batches, on token ids a test can read."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.sentiment_model import WordPairIds, make_ngram_classifier, make_text_model
from training.sequence_fit import bucketed_batches
from training.text_preprocessing import TokenIds


def test_word_pairs_follow_the_words_and_skip_padding() -> None:
    ids = np.array([[3, 4, 5], [6, 0, 0]])
    out = WordPairIds(vocabulary_size=10, buckets=7)(ids).numpy()
    pair = lambda a, b: 10 + (a * 1_000_003 + b) % 7  # noqa: E731
    assert out.tolist() == [[3, 4, 5, pair(3, 4), pair(4, 5)], [6, 0, 0, 0, 0]]


def test_a_single_word_has_no_pairs() -> None:
    assert WordPairIds(10, 7)(np.array([[4]])).numpy().tolist() == [[4]]


def _tokens(texts: list[str]) -> TokenIds:
    token_ids = TokenIds(vocabulary_size=20, max_tokens=8)
    token_ids.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(4))
    return token_ids


def _fit(model: keras.Model, batches: tf.data.Dataset, epochs: int) -> None:
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        # bucketed batches have no known count, so Keras warns at each epoch's end; it is expected
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(batches, epochs=epochs, shuffle=False, verbose=0)  # the batches are shuffled


def test_ngram_member_learns_what_single_words_cannot() -> None:
    # "not" flips the sentiment: no weighting of single words separates these, word pairs do
    texts = ["good", "bad", "not good", "not bad"]
    labels = np.array([1, 0, 0, 1])
    keras.utils.set_random_seed(0)
    token_ids = _tokens(texts)
    model = make_ngram_classifier(len(token_ids.vocabulary()), buckets=64, num_classes=2)
    batches = bucketed_batches(
        token_ids.ragged_ids(tf.constant(texts * 8)), np.tile(labels, 8), 8, 8, shuffle=True
    )
    _fit(model, batches, epochs=60)
    probabilities = make_text_model(token_ids, model)(tf.constant(texts)).numpy()
    assert probabilities.argmax(1).tolist() == labels.tolist()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)


def test_an_empty_text_gets_uniform_probabilities_from_the_ngram_member() -> None:
    token_ids = _tokens(["a b c"])
    model = make_ngram_classifier(len(token_ids.vocabulary()), buckets=8, num_classes=3)
    probabilities = make_text_model(token_ids, model)(tf.constant([""])).numpy()
    np.testing.assert_allclose(probabilities, [[1 / 3] * 3], atol=1e-6)


def test_weighted_batches_keep_each_text_with_its_label_and_weight() -> None:
    ids = tf.ragged.constant([[1], [2, 2], [3, 3, 3], [4, 4, 4, 4]], dtype=tf.int64)
    labels, weights = np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    seen = []
    for batch_ids, batch_labels, batch_weights in bucketed_batches(
        ids, labels, 2, 8, shuffle=True, seed=3, weights=weights
    ):
        rows = zip(batch_ids.numpy(), batch_labels.numpy(), batch_weights.numpy(), strict=True)
        for row, label, weight in rows:
            text = int(row[0])
            seen.append(text)
            assert label == labels[text - 1] and weight == pytest.approx(weights[text - 1])
    assert sorted(seen) == [1, 2, 3, 4]


@pytest.mark.parametrize("trusted", [0, 1])
def test_sample_weights_decide_between_conflicting_labels(trusted: int) -> None:
    # the same text labelled both ways: the label whose rows weigh more wins
    texts, labels = ["same words"] * 8, np.array([0, 1] * 4)
    weights = np.where(labels == trusted, 1.0, 0.2)
    keras.utils.set_random_seed(0)
    token_ids = _tokens(texts)
    model = make_ngram_classifier(len(token_ids.vocabulary()), buckets=8, num_classes=2)
    ids = token_ids.ragged_ids(tf.constant(texts))
    _fit(model, bucketed_batches(ids, labels, 4, 8, shuffle=True, weights=weights), epochs=20)
    probabilities = make_text_model(token_ids, model)(tf.constant(["same words"])).numpy()
    assert probabilities.argmax(1).tolist() == [trusted]
    assert probabilities[0, trusted] > 0.75  # 1.0 against 0.2: about 5 to 1
