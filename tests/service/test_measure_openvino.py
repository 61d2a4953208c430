"""service.measure_openvino on a text version: its split (the tokenizer and a network on token ids, rebuilt
from training's definitions with the version's own vocabulary, variables and temperature) gives
serving_default's answers, and so does each candidate the command times on it (OpenVINO: the `openvino` extra).

The versions are built as training exports them (the same builders and exporter), tiny and untrained.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from contract.savedmodel import SIGNATURE_KEY, load_model
from contract.tokens import TokenizerSpec
from contract.verification import VerificationSample
from service.measure_openvino import (
    SPLIT_TOLERANCE,
    saved_split,
    split_difference,
    split_text_model,
    text_candidates,
)
from training.calibration import with_temperature
from training.common import export_saved_model
from training.sentiment_model import (
    NetworkConfig,
    make_classifier,
    make_ensemble,
    make_ngram_classifier,
    make_served_classifier,
    make_text_model,
)
from training.text_preprocessing import TokenIds

MAX_TOKENS = 6
TEXTS = ["a great film", "a dull film, dull story", "great acting!", "words it never saw", "",
         "great great dull film with a story that runs on past the six words kept"]
NETWORK = {"embedding_dim": 4, "lstm_units": 3, "lstm_layers": 1, "dropout": 0.0}


def build_sentiment_version(version_dir: Path, members: int, ngram_buckets: int | None,
                            temperature: float | None, lstm_units_on_card: int = 3) -> Path:
    """A text version shaped as training exports it: TokenIds > the mean of `members` BiLSTM networks and
    an n-gram member (with `ngram_buckets`) > temperature scaling, with random weights."""
    keras.utils.set_random_seed(members)
    token_ids = TokenIds(vocabulary_size=20, max_tokens=MAX_TOKENS, keep="tail")
    token_ids.adapt(tf.data.Dataset.from_tensor_slices(TEXTS).batch(len(TEXTS)))
    vocabulary, classes = len(token_ids.vocabulary()), 3
    config = NetworkConfig(vocabulary, NETWORK["embedding_dim"], NETWORK["lstm_units"], 0.0, classes)
    glove = make_ensemble([make_classifier(config, None, name=f"glove_{i}") for i in range(members)])
    ngram = None if ngram_buckets is None else make_ngram_classifier(vocabulary, ngram_buckets, classes)
    classifier = make_served_classifier(glove, ngram)
    rng = np.random.default_rng(members)
    for weight in classifier.weights:  # larger than the initial ones, so that texts get different answers
        weight.assign(rng.normal(size=weight.shape))
    exported = make_text_model(token_ids, classifier)
    if temperature is not None:
        exported = with_temperature(exported, temperature)
    export_saved_model(exported, version_dir, tf.TensorSpec([None], tf.string, name="text"), lookups=[token_ids])
    training = {"network": NETWORK | {"lstm_units": lstm_units_on_card}, "ensemble": {"members": members}}
    card = {
        "name": version_dir.parent.name, "version": int(version_dir.name), "task": "text-classification",
        "labels": ["negative", "neutral", "positive"],
        "input": {"max_tokens": MAX_TOKENS, "vocabulary_size": vocabulary,
                  "tokenizer": TokenizerSpec(keep="tail").model_dump()},
        "evaluation": {"split": "none (a test model)"}, "dataset": {"name": "none", "sha256": "0" * 64},
        "training": {"command": "tests", "seconds": 0, "machine": "test", **training}
                    | ({} if ngram_buckets is None else {"ngram_member": {"buckets": ngram_buckets}}),
        "git_commit": "test",
    } | ({} if temperature is None else {"calibration": {"temperature": round(temperature, 5)}})
    (version_dir / "model.json").write_text(json.dumps(card))
    return version_dir


def texts_sample() -> VerificationSample:
    return VerificationSample(TEXTS, np.zeros(len(TEXTS), np.int64), np.zeros((len(TEXTS), 3), np.float32))


@pytest.mark.parametrize(("members", "ngram_buckets", "temperature"), [(1, None, None), (2, 64, 0.7123456)])
def test_the_split_gives_serving_defaults_answers(tmp_path: Path, members: int, ngram_buckets: int | None,
                                                  temperature: float | None) -> None:
    model = load_model(build_sentiment_version(tmp_path / "tiny-sentiment" / "1", members, ngram_buckets, temperature))
    split = split_text_model(model)
    predict = saved_split(split, tmp_path / "network")
    assert split_difference(model, predict, texts_sample()) <= SPLIT_TOLERANCE
    assert np.ptp(model.predict([text.encode() for text in TEXTS]), axis=0).max() > 0.1  # answers that differ

    inputs = tf.saved_model.load(str(tmp_path / "network")).signatures[SIGNATURE_KEY].structured_input_signature[1]
    names = ["token_ids"] + ([] if ngram_buckets is None else ["word_pair_ids"])
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        name: (tf.int64, [None, None]) for name in names}

    # Padded ids (what XLA and the unrolled LSTMs are given) are masked: the same answers.
    padded = split.tokenizer(4)
    assert padded([b"great"])["token_ids"].shape == (1, 4)
    assert padded([TEXTS[-1].encode()])["token_ids"].shape == (1, MAX_TOKENS)
    unrolled = split_text_model(model, unroll=True)
    for network, tokenize in ((split.network, padded), (unrolled.network, unrolled.tokenizer(MAX_TOKENS))):
        call = tf.function(lambda inputs, network=network: network(inputs, training=False))
        difference = split_difference(model, lambda batch, call=call, tokenize=tokenize: call(tokenize(batch)).numpy(),
                                      texts_sample())
        assert difference <= SPLIT_TOLERANCE


def test_a_card_that_does_not_describe_the_network_is_refused(tmp_path: Path) -> None:
    model = load_model(build_sentiment_version(tmp_path / "tiny-sentiment" / "1", 1, None, None,
                                               lstm_units_on_card=5))
    with pytest.raises(SystemExit, match="does not match the rebuilt network"):
        split_text_model(model)


@pytest.mark.slow  # XLA and OpenVINO compile the networks: about 7 s
def test_every_text_candidate_gives_the_versions_answers(tmp_path: Path) -> None:
    import openvino

    model = load_model(build_sentiment_version(tmp_path / "tiny-sentiment" / "1", 2, 64, 0.7123456))
    batch = [text.encode() for text in TEXTS]
    sample = VerificationSample(TEXTS, np.zeros(len(TEXTS), np.int64), model.predict(batch))
    candidates, tokenizer = text_candidates(model, sample, openvino.Core(), tmp_path / "network")
    assert tokenizer(batch).shape == (len(TEXTS), MAX_TOKENS)
    assert any("unrolled" in name for name in candidates)  # texts of at most 64 tokens
    for name, predict in candidates.items():
        np.testing.assert_allclose(predict(batch), sample.probabilities, atol=0.05 if "bf16" in name else 1e-5,
                                   err_msg=name)
