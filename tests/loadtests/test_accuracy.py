"""python -m loadtests.accuracy against a real service, on tiny datasets built here in the real formats."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtests.accuracy import main
from tests.tiny_models import IMAGE_LABELS, build_image_model, build_text_model

COLOURS = dict(zip(IMAGE_LABELS, [(220, 20, 20), (20, 220, 20), (20, 20, 220)], strict=True))  # red, green, blue


def _set_card_accuracy(version_dir: Path, accuracy: float) -> None:
    card = json.loads((version_dir / "model.json").read_text())
    card["evaluation"]["accuracy"] = accuracy
    (version_dir / "model.json").write_text(json.dumps(card))


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), rgb).save(out, "JPEG", quality=95)
    return out.getvalue()


def _colour_zip(path: Path) -> Path:
    """An image-folder zip like cifar10-jpeg.zip: colours/{train,test}/<class>/<n>.jpg, two test images a class."""
    with zipfile.ZipFile(path, "w") as archive:
        for label, rgb in COLOURS.items():
            archive.writestr(f"colours/train/{label}/0.jpg", _jpeg(rgb))
            for index in range(2):
                archive.writestr(f"colours/test/{label}/{index}.jpg", _jpeg(rgb))
    return path


def _imdb_tar(path: Path) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt, as the IMDB archive lays them out."""
    reviews = {"pos": "a good film", "neg": "a bad film"}
    with tarfile.open(path, "w:gz") as archive:
        for split in ("train", "test"):
            for polarity, text in reviews.items():
                for index in range(3):
                    data = text.encode()
                    member = tarfile.TarInfo(f"aclImdb/{split}/{polarity}/{index}_{8 if polarity == 'pos' else 2}.txt")
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))
    return path


@pytest.mark.live
def test_every_test_input_goes_through_http_and_is_scored_against_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifacts = tmp_path / "artifacts"
    _set_card_accuracy(build_image_model(artifacts / "tiny-image" / "1"), 1.0)
    # A card whose accuracy the served model misses by far: the command must say so and fail.
    _set_card_accuracy(build_text_model(artifacts / "tiny-text" / "1"), 0.5)

    status = main(["--artifacts", str(artifacts), "--cifar10", str(_colour_zip(tmp_path / "colours.zip")),
                   "--imdb", str(_imdb_tar(tmp_path / "imdb.tar.gz")), "--tweets", "",
                   "--image-model", "tiny-image", "--imdb-model", "tiny-text",
                   "--images-per-request", "2", "--texts-per-request", "4", "--concurrency", "2"])

    output = capsys.readouterr().out
    image, text = (json.loads(line) for line in output.splitlines() if line.startswith("{"))
    assert (image["model"], image["version"], image["runtime"], image["count"]) == ("tiny-image", 1, "tensorflow", 6)
    assert image["accuracy"] == 1.0 and image["ece"] < 0.001  # a solid colour: near-certain and right
    assert image["split"] == "the test split of colours.zip (6 JPEGs)"
    assert (text["model"], text["count"], text["accuracy"], text["card_accuracy"]) == ("tiny-text", 6, 1.0, 0.5)
    # Every review has one "good" or one "bad": each answer is right with confidence sigmoid(1).
    assert text["ece"] == pytest.approx(1 - 1 / (1 + np.exp(-1)), abs=1e-6)
    assert status == 1
    table = output[output.index("| model"):]
    assert "| tiny-image (v1, tensorflow) |" in table and "| yes |" in table
    assert "accuracy 100.00% is more than 0.3% from the card's 50.00%" in table and "ECE 0.2689 is above 0.03" in table
