"""In-graph normalisation and token ids: what serving and training both see."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training.text_preprocessing import TokenIds, normalize


def normalized(text: str, social: bool) -> str:
    return normalize(tf.constant([text]), social).numpy()[0].decode("utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RT @realDonaldTrump: great night", "xxrt realdonaldtrump great night"),
        ("Loved it #GOPDebate #Trump2016", "loved it gopdebate trump2016"),
        ("see https://t.co/AbC123 and www.example.com/x now", "see xxurl and xxurl now"),
        ("Fox &amp; friends &lt;3", "fox and friends 3"),
        ("ART is smart, not a retweet", "art is smart not a retweet"),
        ("Wow!!! Really?", "wow ! ! ! really ?"),
        ("", ""),
    ],
)
def test_tweet_normalisation(text: str, expected: str) -> None:
    assert normalized(text, social=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Great film.<br /><br />I didn't expect THAT.", "great film i did n't expect that"),
        ("It's 'fine', they're OK", "it 's fine they 're ok"),
        ("Café crème <i>très</i> bien", "café crème très bien"),
        ("Tom &amp; Jerry&#39;s dog", "tom and jerry 's dog"),
    ],
)
def test_review_normalisation(text: str, expected: str) -> None:
    assert normalized(text, social=False) == expected


def test_tweet_rules_are_off_for_reviews() -> None:
    assert normalized("RT @user see http://x.co", social=False) == "rt user see http x co"


def token_ids(keep: str, max_tokens: int = 3) -> TokenIds:
    layer = TokenIds(vocabulary_size=10, max_tokens=max_tokens, keep=keep)
    layer.set_vocabulary(["", "[UNK]", "a", "b", "c", "d", "e"])
    return layer


def test_pads_to_longest_text_in_batch_not_to_max_tokens() -> None:
    ids = token_ids("head", max_tokens=50)(tf.constant(["a b", "c"])).numpy()
    np.testing.assert_array_equal(ids, [[2, 3], [4, 0]])


@pytest.mark.parametrize(("keep", "expected"), [("head", [2, 3, 4]), ("tail", [4, 5, 6])])
def test_long_text_is_truncated_at_the_chosen_end(keep: str, expected: list[int]) -> None:
    ids = token_ids(keep)(tf.constant(["a b c d e"])).numpy()
    np.testing.assert_array_equal(ids, [expected])


def test_empty_and_unknown_texts_still_get_ids() -> None:
    ids = token_ids("head")(tf.constant(["", "zzz"])).numpy()
    np.testing.assert_array_equal(ids, [[0], [1]])
    assert token_ids("tail")(tf.constant([""])).numpy().shape == (1, 1)


def test_keep_must_be_head_or_tail() -> None:
    with pytest.raises(ValueError, match="keep"):
        TokenIds(vocabulary_size=10, max_tokens=3, keep="middle")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#GOPDebate #DebateWithBernie tonight", "gop debate debate with bernie tonight"),
        ("#TedCruz #gopdebate #Trump2016 #USA", "ted cruz gopdebate trump2016 usa"),
        ("@realDonaldTrump MacBook", "realdonaldtrump macbook"),  # only hashtags are split
    ],
)
def test_split_hashtags(text: str, expected: str) -> None:
    assert normalize(tf.constant([text]), True, split_hashtags=True).numpy()[0].decode() == expected


def test_split_hashtags_is_off_by_default_and_kept_in_the_config() -> None:
    assert normalized("#GOPDebate", social=True) == "gopdebate"
    layer = TokenIds(vocabulary_size=10, max_tokens=3, social=True, split_hashtags=True)
    layer.set_vocabulary(["", "[UNK]", "gop", "debate"])
    np.testing.assert_array_equal(layer(tf.constant(["#GOPDebate"])).numpy(), [[2, 3]])
    assert TokenIds.from_config(layer.get_config()).split_hashtags
