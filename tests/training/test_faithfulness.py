"""Faithfulness on tiny models whose deciding parts are known: leaving out what the served weights rank
highest must lower the answer by exactly what those parts are worth, and far more than random parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.card import read_card
from contract.layout import newest_version_dir
from contract.savedmodel import load_model
from tests.tiny_models import build_quadrant_image_model, build_text_model
from training import faithfulness
from training.common import REPO_ROOT

FILLER = ["the", "plot", "was", "and", "acting", "film", "with", "some", "scenes", "cast", "music", "story"]
SCALE = 3  # the tiny text model's version: P(positive) = sigmoid(3 * (#good - #bad))


def deciding_texts(count: int, seed: int = 1) -> list[str]:
    """Texts of filler words and one deciding word ("good" or "bad"), some longer than MAX_WORDS (spans)."""
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(count):
        length = 55 if i % 5 == 0 else int(rng.integers(20, 40))  # 55 > MAX_WORDS: weights per span
        words = [str(word) for word in rng.choice(FILLER, size=length)]
        words.insert(int(rng.integers(0, length + 1)), "good" if i % 2 else "bad")
        texts.append(" ".join(words))
    return texts


def test_deleting_the_top_weighted_words_takes_the_deciding_word_and_random_ones_rarely_do(tmp_path: Path) -> None:
    model = load_model(build_text_model(tmp_path / "tiny-text" / str(SCALE)))
    short = ["good", "so good", "a good film here"]  # 1, 2 and 4 words: skipped for k = 3 and 5, or for 5
    texts = deciding_texts(60) + short

    deletions = faithfulness.text_deletions(model, texts)

    assert [(d.parts, d.count, d.skipped) for d in deletions] == [(3, 61, 2), (5, 60, 3)]
    worth = 1 / (1 + np.exp(-SCALE)) - 0.5  # the deciding word's whole contribution: its deletion leaves 0.5
    for deletion in deletions:
        assert deletion.mean_drop_top == pytest.approx(worth, abs=1e-5)
        assert deletion.ratio is not None and deletion.ratio > 4 and deletion.meets_bar
    assert faithfulness.text_deletions(model, texts) == deletions  # seeded: the same random words again


def test_a_text_card_without_a_tokenizer_cannot_be_measured(tmp_path: Path) -> None:
    model = load_model(build_text_model(tmp_path / "tiny-text" / "1", declare_tokenizer=False))
    with pytest.raises(ValueError, match="declares no input.tokenizer"):
        faithfulness.text_deletions(model, ["good film"])


def quadrant_images(count: int, size: int = 8, seed: int = 2) -> np.ndarray:
    """Images of one colour (its channel 140-170, the others 85-115, on either side of GREY): filling any top-left
    pixel with grey lowers the quadrant model's answer, by enough to show in float32 (it is not saturated)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(85, 116, (count, size, size, 3))
    labels = rng.integers(0, 3, count)
    images[np.arange(count), :, :, labels] = rng.integers(140, 171, (count, size, size))
    return images.astype(np.uint8)


def test_the_most_salient_quarter_is_the_quadrant_the_model_looks_at(tmp_path: Path) -> None:
    model = load_model(build_quadrant_image_model(tmp_path / "tiny-quadrant" / "1"))
    images = quadrant_images(40)

    deletion = faithfulness.image_deletions(model, images)

    # An 8 x 8 grid on 8 x 8 pixels: the top quarter (16 cells) is the 4 x 4 quadrant if the weights are right,
    # and filling all of it grey makes every class equally likely.
    top = model.predict(images).max(axis=1)
    assert (deletion.parts, deletion.count, deletion.skipped) == (16, 40, 0)
    assert deletion.mean_drop_top == pytest.approx(float(np.mean(top - 1 / 3)), abs=1e-5)
    assert deletion.ratio is not None and deletion.ratio >= 2 and deletion.meets_bar


def test_the_section_records_the_settings_the_selection_and_each_deletion(tmp_path: Path) -> None:
    model = load_model(build_text_model(tmp_path / "tiny-text" / str(SCALE)))
    texts = deciding_texts(30)

    section = faithfulness.explanations_section(model, texts, split="test", split_description="made-up texts",
                                                count=20, seed=5)

    assert (section["method"], section["max_words"]) == ("occlusion", 48)
    measured = section["faithfulness"]
    assert (measured["split"], measured["count"], measured["seed"], measured["meets_bar"]) == ("test", 20, 5, True)
    assert measured["inputs"].startswith("20 of the 30 inputs of the made-up texts, chosen by numpy default_rng(5)")
    assert [(d["parts"], d["count"], d["skipped"]) for d in measured["deletions"]] == [(3, 20, 0), (5, 20, 0)]
    # Here no random three words hit a deciding one: no drop to divide by (ratio null), and the bar is met.
    assert [(d["ratio"], d["meets_bar"]) for d in measured["deletions"]][0] == (None, True)
    assert all(d["mean_drop_top"] > 2 * d["mean_drop_random"] and d["meets_bar"] for d in measured["deletions"])


@pytest.mark.parametrize("name", ["cifar10-cnn", "sentiment-imdb", "sentiment-tweets"])
def test_the_newest_committed_version_records_faithful_explanations(name: str) -> None:
    """Issue 27's bar, read from the card of the version the service serves: the top-weighted parts'
    mean drop at least twice the random parts', for k = 3 and 5 words or for a quarter of the grid."""
    model_dir = REPO_ROOT / "artifacts" / name
    if not model_dir.is_dir():
        pytest.skip(f"no committed {name} artifact in this checkout")
    card = read_card(newest_version_dir(model_dir))
    measured = card.model_extra["explanations"]["faithfulness"]  # type: ignore[index]
    assert measured["split"] == "test"
    assert measured["count"] >= faithfulness.DEFAULT_COUNT
    expected_parts = [16] if card.task == "image-classification" else list(faithfulness.TEXT_KS)
    assert [d["parts"] for d in measured["deletions"]] == expected_parts
    for deletion in measured["deletions"]:
        assert deletion["mean_drop_top"] >= faithfulness.BAR * deletion["mean_drop_random"], deletion
    assert measured["meets_bar"]
    if card.task == "text-classification":
        assert card.input.tokenizer is not None  # type: ignore[attr-defined]
