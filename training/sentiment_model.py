"""The sentiment network: token ids -> GloVe Embedding -> BiLSTM -> max+mean pooling -> softmax.

`make_ngram_classifier` is the "wide" partner of that "deep" network: a linear softmax over
the text's words and hashed word pairs, which learns the exact phrases the LSTM smooths over.
`make_ensemble` averages the probabilities of several models (BiLSTMs trained from different
seeds, and the wide and the deep part) inside one graph, so the export is still one model.

`make_classifier` works on token ids, so training can bucket batches by length; `make_text_model`
puts the in-graph `TokenIds` layer in front of it for export (raw strings in, probabilities out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from training.text_preprocessing import TokenIds


@dataclass(frozen=True)
class NetworkConfig:
    vocabulary_size: int
    embedding_dim: int
    lstm_units: int
    dropout: float
    num_classes: int
    lstm_layers: int = 1  # stacked BiLSTMs; the pooling reads the last one

    def as_dict(self) -> dict:
        return asdict(self)


def _step_weights(inputs, mask):
    """[batch, time, 1]: 1 for the unmasked steps of `inputs`, 0 for padding (all 1 without a mask)."""
    if mask is None:
        mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
    return ops.expand_dims(ops.cast(mask, inputs.dtype), -1)


def _masked_mean(inputs, weights):
    """The mean over the steps whose weight is 1; zeros for a text with none."""
    return ops.sum(inputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="training")
class MaskedMaxMeanPooling(keras.layers.Layer):
    """[batch, time, features] -> [batch, 2 * features]: max and mean over the unmasked steps.

    Padding is masked, so a text's answer does not depend on the other texts in its batch;
    an empty (all-padding) text pools to zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        weights = _step_weights(inputs, mask)
        maximum = ops.max(ops.where(weights > 0, inputs, -1e9), axis=1)
        maximum = ops.where(ops.sum(weights, axis=1) > 0, maximum, 0.0)
        return ops.concatenate([maximum, _masked_mean(inputs, weights)], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


def make_classifier(
    config: NetworkConfig, embeddings: np.ndarray | None, name: str = "sentiment_classifier"
) -> keras.Model:
    """The network on int64 token ids [batch, time] (0 = padding)."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    embedding = layers.Embedding(config.vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding")
    x = embedding(ids)
    if embeddings is not None:
        if embeddings.shape != (config.vocabulary_size, config.embedding_dim):
            raise ValueError(
                f"embedding matrix {embeddings.shape} does not match ({config.vocabulary_size}, {config.embedding_dim})"
            )
        embedding.set_weights([embeddings])
    x = layers.SpatialDropout1D(config.dropout)(x)
    for layer in range(config.lstm_layers):
        x = layers.Bidirectional(
            layers.LSTM(config.lstm_units, return_sequences=True),
            name="bilstm" if layer == 0 else f"bilstm_{layer + 1}",
        )(x)
    x = MaskedMaxMeanPooling(name="pooling")(x)
    x = layers.Dropout(config.dropout)(x)
    probabilities = layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(ids, probabilities, name=name)


@keras.saving.register_keras_serializable(package="training")
class WordPairIds(keras.layers.Layer):
    """Token ids [batch, time] -> [batch, 2 * time - 1]: the ids, then one id per adjacent pair
    of words, hashed into `buckets` ids after the vocabulary's. 0 (padding) stays 0."""

    def __init__(self, vocabulary_size: int, buckets: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.buckets = vocabulary_size, buckets

    def call(self, ids):
        first, second = ids[:, :-1], ids[:, 1:]
        # a large odd multiplier spreads the pairs of two ids over the buckets
        pairs = self.vocabulary_size + ops.mod(first * 1_000_003 + second, self.buckets)
        pairs = ops.where((first > 0) & (second > 0), pairs, 0)
        return ops.concatenate([ids, pairs], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "buckets": self.buckets,
        }


@keras.saving.register_keras_serializable(package="training")
class MaskedMean(keras.layers.Layer):
    """[batch, time, features] -> [batch, features]: the mean over the unmasked steps."""

    def call(self, inputs, mask=None):
        return _masked_mean(inputs, _step_weights(inputs, mask))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def make_ngram_classifier(
    vocabulary_size: int, buckets: int, num_classes: int, name: str = "ngram_classifier"
) -> keras.Model:
    """Multinomial logistic regression on the mean of a text's word and word-pair weights
    (fastText without hidden layer); starts from zeros, i.e. from uniform probabilities."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    ngrams = WordPairIds(vocabulary_size, buckets, name="word_pairs")(ids)
    weights = layers.Embedding(
        vocabulary_size + buckets,
        num_classes,
        mask_zero=True,
        embeddings_initializer="zeros",
        name="ngram_weights",
    )(ngrams)
    logits = MaskedMean(name="mean")(weights)
    probabilities = layers.Activation("softmax", name="probabilities")(logits)
    return keras.Model(ids, probabilities, name=name)


def make_ensemble(members: list[keras.Model], name: str = "sentiment_ensemble") -> keras.Model:
    """The mean of the members' probabilities, on the same token ids; one member is returned as is."""
    if len(members) == 1:
        return members[0]
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    probabilities = layers.Average(name="mean_probabilities")([member(ids) for member in members])
    return keras.Model(ids, probabilities, name=name)


def make_served_classifier(glove: keras.Model, ngram: keras.Model | None, name: str = "wide_and_deep") -> keras.Model:
    """What a run exports: the GloVe network(s), or the mean of them and the n-gram member."""
    return glove if ngram is None else make_ensemble([glove, ngram], name=name)


def make_text_model(token_ids: TokenIds, classifier: keras.Model) -> keras.Model:
    """Raw UTF-8 strings [batch] -> probabilities: what gets exported and served."""
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, classifier(token_ids(text)), name="sentiment")


def predict_texts(text_model: keras.Model, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """A text model's probabilities for a whole split, one batch at a time."""
    # One graph for every batch: called eagerly, Keras runs an LSTM's loop over the tokens in Python.
    predict = tf.function(lambda batch: text_model(batch, training=False), reduce_retracing=True)
    return np.concatenate(
        [predict(tf.constant(texts[i : i + batch_size])).numpy() for i in range(0, len(texts), batch_size)]
    )
