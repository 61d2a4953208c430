"""contract.occlusion: the parts an explanation leaves out, shared by the service and training."""

from __future__ import annotations

import numpy as np

from contract import occlusion
from contract.tokens import Tokenizer, TokenizerSpec


def test_words_beyond_the_limit_go_in_even_spans_that_cover_every_word_once() -> None:
    assert occlusion.parts(3, 5) == [(0, 1), (1, 2), (2, 3)]
    runs = occlusion.parts(11, 4)
    assert runs[0][0] == 0 and runs[-1][1] == 11
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:], strict=False))
    assert sorted(end - first for first, end in runs) == [2, 3, 3, 3]


def test_a_variant_blanks_exactly_its_words_characters() -> None:
    text = "So GOOD, not bad!"
    tokens = Tokenizer(TokenizerSpec(), max_tokens=10).tokens(text)
    variants = occlusion.text_variants(text, tokens, occlusion.parts(len(tokens), 2))
    # Five words in two spans: "So GOOD" and "not bad !"; the comma is no word and stays.
    assert variants == [" " * 7 + ", not bad!", "So GOOD, " + " " * 8]
    assert all(len(v) == len(text) for v in variants)


def test_each_image_variant_is_the_image_with_one_cell_grey_as_filled_makes_it() -> None:
    image = np.arange(6 * 9 * 3, dtype=np.uint8).reshape(6, 9, 3)
    variants = occlusion.image_variants(image, grid=3)
    assert variants.shape == (9, 6, 9, 3)
    for cell, variant in enumerate(variants):
        np.testing.assert_array_equal(variant, occlusion.filled(image, [cell], grid=3))
        changed = (variant != image).any(axis=2)
        assert changed.sum() <= 6 and (variant[changed] == occlusion.GREY).all()  # one 2 x 3 cell


def test_a_weight_is_the_predicted_labels_loss_without_the_part() -> None:
    top, weights = occlusion.weights(np.array([0.2, 0.8]), np.array([[0.5, 0.5], [0.1, 0.9]]))
    assert top == 1 and np.allclose(weights, [0.3, -0.1])
