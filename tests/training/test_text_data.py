"""The IMDB and tweet readers: layouts, skipped rows, the fixed stratified split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.training.tiny_text import CONFIDENCES, TWEETS_SKIPPED
from training.text_data import (
    DatasetError,
    dataset_sha256,
    read_imdb,
    read_tweets,
    validation_split,
)


@pytest.mark.parametrize("source", ["folder", "parent", "tarball"])
def test_imdb_reads_every_labelled_review_and_ignores_unsup(
    source, imdb_folder, imdb_tarball
) -> None:
    path = {"folder": imdb_folder, "parent": imdb_folder.parent, "tarball": imdb_tarball}[source]
    data = read_imdb(path)
    assert (len(data.train), len(data.test)) == (40, 20)
    assert Counter(data.train.labels.tolist()) == {0: 20, 1: 20}
    assert "unlabelled" not in data.train.texts
    assert data.labels == ["negative", "positive"]
    for text, label in zip(data.train.texts, data.train.labels, strict=True):
        assert label == (
            1 if any(w in text for w in ("great", "loved", "superb", "brilliant")) else 0
        )


def test_imdb_folder_and_tarball_give_the_same_order(imdb_folder, imdb_tarball) -> None:
    a, b = read_imdb(imdb_folder), read_imdb(imdb_tarball)
    assert a.train.texts == b.train.texts and a.test.ids == b.test.ids
    np.testing.assert_array_equal(a.train.labels, b.train.labels)


def test_imdb_empty_review_is_counted(imdb_folder) -> None:
    (imdb_folder / "train" / "pos" / "99_10.txt").write_text("  ", encoding="utf-8")
    assert read_imdb(imdb_folder).skipped == {"empty review": 1}


@pytest.mark.parametrize("content", [None, b"not a tar archive"])
def test_imdb_bad_path_is_a_clear_error(tmp_path: Path, content) -> None:
    path = tmp_path / "aclImdb.tar.gz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match="aclImdb.tar.gz"):
        read_imdb(path)


def test_tweets_skip_bad_rows_and_count_them(tweets_csv) -> None:
    data = read_tweets(tweets_csv, test_fraction=0.25, seed=1)
    assert data.skipped == TWEETS_SKIPPED
    assert len(data.train) + len(data.test) == 60
    assert data.labels == ["negative", "neutral", "positive"]


def test_tweet_split_is_fixed_stratified_and_disjoint(tweets_csv) -> None:
    a, b = read_tweets(tweets_csv, 0.25, seed=7), read_tweets(tweets_csv, 0.25, seed=7)
    assert a.test.ids == b.test.ids
    assert not set(a.test.ids) & set(a.train.ids)
    assert Counter(a.test.labels.tolist()) == {0: 5, 1: 5, 2: 5}
    assert read_tweets(tweets_csv, 0.25, seed=8).test.ids != a.test.ids


def test_tweets_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Sentiment.csv"
    path.write_text("id,text\n1,hello\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="sentiment"):
        read_tweets(path)


def test_validation_split_is_stratified_and_disjoint(tweets_csv) -> None:
    train = read_tweets(tweets_csv, 0.25, seed=1).train
    fit, val = validation_split(train, 1 / 3, seed=1)
    assert len(fit) + len(val) == len(train)
    assert not set(fit.ids) & set(val.ids)
    assert Counter(val.labels.tolist()) == {0: 5, 1: 5, 2: 5}


def test_dataset_sha256_changes_with_content(imdb_folder) -> None:
    before = dataset_sha256(imdb_folder)
    (imdb_folder / "test" / "neg" / "0_2.txt").write_text("changed", encoding="utf-8")
    assert dataset_sha256(imdb_folder) != before


def test_tweets_carry_the_annotators_confidence_through_splits(tweets_csv) -> None:
    data = read_tweets(tweets_csv, 0.25, seed=1)
    by_id = {str(i + 1): float(CONFIDENCES[(i + 1) % 3]) for i in range(60)}
    for split in (data.train, data.test):
        assert split.confidence.dtype == np.float32
        np.testing.assert_allclose(split.confidence, [by_id[i] for i in split.ids], rtol=1e-6)
    fit, val = validation_split(data.train, 1 / 3, seed=1)
    both = fit + val
    assert both.ids == fit.ids + val.ids and len(both.confidence) == len(both)
    np.testing.assert_allclose(both.confidence, [by_id[i] for i in both.ids], rtol=1e-6)


def test_tweets_without_a_confidence_column_have_none(tmp_path: Path) -> None:
    path = tmp_path / "Sentiment.csv"
    rows = [f"{i},{label},tweet {i}" for i, label in enumerate(["Positive", "Negative"] * 10, 1)]
    path.write_text("id,sentiment,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = read_tweets(path, 0.5, seed=1)
    assert data.train.confidence is None and data.test.confidence is None
    assert (data.train + data.test).confidence is None


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "nan", "", "high"])
def test_a_confidence_outside_0_1_skips_the_row(tmp_path: Path, value: str) -> None:
    path = tmp_path / "Sentiment.csv"
    rows = [f"{i},{lab},1,tweet {i}" for i, lab in enumerate(["Positive", "Negative"] * 5, 1)]
    rows.append(f"99,Positive,{value},the odd one")
    text = "id,sentiment,sentiment_confidence,text\n" + "\n".join(rows) + "\n"
    path.write_text(text, encoding="utf-8")
    data = read_tweets(path, 0.4, seed=1)
    assert data.skipped == {"sentiment_confidence not in (0, 1]": 1}
    assert "99" not in data.train.ids + data.test.ids
