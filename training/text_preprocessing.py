"""In-graph text processing: raw UTF-8 strings -> normalised words -> padded token ids.

Everything here is TensorFlow ops inside the exported model, so the service, TF Serving
and the training loop all see exactly the same tokens for the same text. The rules themselves
are contract.tokens's, which also finds the same words in Python, with their offsets.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from contract import tokens


def normalize(texts: tf.Tensor, social: bool, split_hashtags: bool = False) -> tf.Tensor:
    """Lower-cased, HTML-free words separated by single spaces; `social` adds the tweet rules,
    `split_hashtags` splits camel-case hashtags into their words first."""
    before, after = tokens.rules(social, split_hashtags)
    for pattern, replacement in before:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, replacement in after:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return tf.strings.strip(texts)


@keras.saving.register_keras_serializable(package="training")
class TokenIds(keras.layers.Layer):
    """Strings [batch] -> int64 ids [batch, longest text in the batch, at most max_tokens].

    Pads only to the longest text of the batch (0 = padding), so a batch of tweets is not
    padded to the movie-review maximum. A longer text is truncated, keeping its first or
    its last `max_tokens` words; an empty text becomes a single padding id.
    """

    def __init__(
        self,
        vocabulary_size: int,
        max_tokens: int,
        keep: str = "head",
        social: bool = False,
        split_hashtags: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if keep not in ("head", "tail"):
            raise ValueError(f"keep must be 'head' or 'tail', got {keep!r}")
        self.vocabulary_size, self.max_tokens, self.keep = vocabulary_size, max_tokens, keep
        self.social, self.split_hashtags = social, split_hashtags
        self.vectorize = keras.layers.TextVectorization(
            max_tokens=vocabulary_size,
            standardize=None,
            split="whitespace",
            output_mode="int",
            output_sequence_length=None,
            ragged=True,
        )

    def adapt(self, texts: tf.data.Dataset) -> None:
        """Fit the vocabulary on (already batched) training text."""
        self.vectorize.adapt(texts.map(lambda t: self.normalize(t)))

    def normalize(self, texts):
        return normalize(texts, self.social, self.split_hashtags)

    def vocabulary(self) -> list[str]:
        return [str(word) for word in self.vectorize.get_vocabulary()]

    def set_vocabulary(self, words: list[str]) -> None:
        self.vectorize.set_vocabulary(words[2:])  # drops the padding and [UNK] entries

    def ragged_ids(self, texts) -> tf.RaggedTensor:
        """The truncated ids without padding, one row per text."""
        ids = self.vectorize(self.normalize(texts))
        return ids[:, : self.max_tokens] if self.keep == "head" else ids[:, -self.max_tokens :]

    def call(self, texts):
        dense = self.ragged_ids(texts).to_tensor(default_value=0)
        width = tf.shape(dense)[1]
        return tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - width)]])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "max_tokens": self.max_tokens,
            "keep": self.keep,
            "social": self.social,
            "split_hashtags": self.split_hashtags,
        }
