"""The card's task is a key of an open registry of kinds; each kind fixes its input section and signature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract import kinds
from contract.card import check_card, read_card
from contract.errors import ArtifactError
from tests.tiny_models import build_image_model


def _card(tmp_path: Path) -> dict:
    return json.loads((build_image_model(tmp_path / "tiny-image" / "1") / "model.json").read_text())


def test_an_unknown_task_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="unknown task 'audio'; known: .*image-classification"):
        check_card(_card(tmp_path) | {"task": "audio"})


def test_the_input_section_is_checked_by_the_kind(tmp_path: Path) -> None:
    good = _card(tmp_path)
    with pytest.raises(ArtifactError, match="height"):
        check_card(good | {"input": {"max_tokens": 10}})
    card = check_card(good)
    assert isinstance(card.input, kinds.ImageInput) and card.kind is kinds.IMAGE
    assert card.to_json()["input"] == {"height": 8, "width": 8}


def test_a_card_must_name_its_own_folder(tmp_path: Path) -> None:
    folder = build_image_model(tmp_path / "tiny-image" / "1")
    renamed = folder.rename(tmp_path / "tiny-image" / "2")
    with pytest.raises(ArtifactError, match="card says tiny-image/1, folder is tiny-image/2"):
        read_card(renamed)


def test_registering_a_different_kind_under_a_taken_task_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(kinds.Kind("image-classification", "pixels", kinds.IMAGE.dtype, kinds.ImageInput,
                                  kinds.IMAGE.item_shape))
