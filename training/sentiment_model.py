"""The sentiment network: token ids -> GloVe Embedding -> BiLSTM -> max+mean pooling -> softmax.

`make_ensemble` averages the probabilities of several such networks (trained from different
seeds) inside one graph, so the export is still one model.

`make_classifier` works on token ids, so training can bucket batches by length; `make_text_model`
puts the in-graph `TokenIds` layer in front of it for export (raw strings in, probabilities out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
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
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.sum(weights, axis=1)
        mean = ops.sum(inputs * weights, axis=1) / ops.maximum(count, 1.0)
        maximum = ops.max(ops.where(weights > 0, inputs, -1e9), axis=1)
        maximum = ops.where(count > 0, maximum, 0.0)
        return ops.concatenate([maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])


def make_classifier(
    config: NetworkConfig, embeddings: np.ndarray | None, name: str = "sentiment_classifier"
) -> keras.Model:
    """The network on int64 token ids [batch, time] (0 = padding)."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    embedding = layers.Embedding(
        config.vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding"
    )
    x = embedding(ids)
    if embeddings is not None:
        if embeddings.shape != (config.vocabulary_size, config.embedding_dim):
            raise ValueError(
                f"embedding matrix {embeddings.shape} does not match "
                f"({config.vocabulary_size}, {config.embedding_dim})"
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


def make_ensemble(members: list[keras.Model]) -> keras.Model:
    """The mean of the members' probabilities, on the same token ids; one member is returned as is."""
    if len(members) == 1:
        return members[0]
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    probabilities = layers.Average(name="mean_probabilities")([member(ids) for member in members])
    return keras.Model(ids, probabilities, name="sentiment_ensemble")


def make_text_model(token_ids: TokenIds, classifier: keras.Model) -> keras.Model:
    """Raw UTF-8 strings [batch] -> probabilities: what gets exported and served."""
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, classifier(token_ids(text)), name="sentiment")
