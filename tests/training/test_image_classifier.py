"""The image training job end to end on a tiny model: train, export, reload, card, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from contract.layout import list_versions
from contract.savedmodel import load_model
from tests.training.test_image_data import image_tree, write_zip
from training import image_classifier
from training.common import REPO_ROOT, sha256_file

TINY = ["--widths", "4", "8", "8", "8", "--batch-size", "8", "--benchmark-seconds", "0.2"]


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    return write_zip(folder / "shapes.zip", image_tree({"train": 6, "test": 3}, top="shapes/"))


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_classifier, "CACHE_DIR", tmp_path_factory.getbasetemp() / "image-cache")


def run_job(tiny_zip: Path, root: Path, *extra: str) -> Path:
    """Run the CLI in-process; returns the model folder."""
    out = root / "artifacts" / "tiny-cnn"
    argv = ["--data", str(tiny_zip), "--out", str(out), "--work-dir", str(root / "run")]
    image_classifier.main([*argv, "--image-size", "12", "20", *TINY, *extra])
    return out


@pytest.fixture(scope="module")
def trained(tiny_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(image_classifier, "CACHE_DIR", root / "cache")
        run_job(tiny_zip, root, "--epochs", "3", "--precision", "mixed_bfloat16")
    return root


def test_export_is_a_loadable_artifact_whose_answers_depend_on_the_image(trained: Path) -> None:
    artifact = load_model(trained / "artifacts" / "tiny-cnn" / "1")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 12, 20, 3), dtype=np.uint8)
    images[0], images[1] = 0, 255

    probabilities = artifact.predict(images)

    assert probabilities.shape == (5, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.abs(probabilities[0] - probabilities[1]).max() > 1e-4
    # Each image is answered on its own, whatever else is in the batch.
    np.testing.assert_allclose(artifact.predict(images[2:3])[0], probabilities[2], atol=1e-5)


def test_card_records_what_the_contract_and_the_issue_ask(trained: Path, tiny_zip: Path) -> None:
    version_dir = trained / "artifacts" / "tiny-cnn" / "1"
    card = json.loads((version_dir / "model.json").read_text())

    assert (card["name"], card["version"], card["task"]) == ("tiny-cnn", 1, "image-classification")
    assert card["labels"] == ["blue", "green", "red"]
    assert card["input"] == {"height": 12, "width": 20}
    evaluation = card["evaluation"]
    assert evaluation["split"] == "test" and evaluation["images"] == 9
    matrix = np.asarray(evaluation["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 9
    assert evaluation["accuracy"] == pytest.approx(np.trace(matrix) / 9)
    assert evaluation["per_class_accuracy"]["red"] == pytest.approx(matrix[2, 2] / matrix[2].sum())
    assert 0 <= evaluation["validation"]["val_accuracy"] <= 1
    assert card["dataset"]["name"] == "shapes"
    assert card["dataset"]["sha256"] == sha256_file(tiny_zip)
    assert card["dataset"]["skipped_unreadable_files"] == 1
    assert "broken.jpg" in card["dataset"]["skipped_examples"][0]
    assert card["dataset"]["train_images"] + card["dataset"]["validation_images"] == 19
    training = card["training"]
    assert training["command"].startswith("python -m training.image_classifier --data ")
    assert training["seconds"] > 0 and "cores" in training["machine"]
    assert training["epochs"] == 3 and "3 hours" in training["time_budget"]
    assert card["model"]["parameters"] > 0
    assert card["inference"]["batch_1_images_per_second"] > 0
    assert card["inference"]["batch_64_images_per_second"] > 0
    assert card["git_commit"]
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (version_dir / png).read_bytes()[:4] == b"\x89PNG"


def test_metrics_csv_has_one_row_per_epoch(trained: Path) -> None:
    with open(trained / "run" / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr"} <= set(rows[0])


def test_resume_restores_epoch_and_optimizer_state(
    tiny_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupted(Exception):
        pass

    start_epoch = image_classifier.EpochClock.on_epoch_begin

    def stop_at_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            raise Interrupted
        start_epoch(self, epoch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(image_classifier.EpochClock, "on_epoch_begin", stop_at_second_epoch)
        with pytest.raises(Interrupted):
            run_job(tiny_zip, tmp_path, "--epochs", "2")
    keras.mixed_precision.set_global_policy("float32")

    with pytest.raises(SystemExit, match="--resume"):
        run_job(tiny_zip, tmp_path, "--epochs", "2")
    with pytest.raises(SystemExit, match="epochs"):
        run_job(tiny_zip, tmp_path, "--epochs", "3", "--resume")

    out = run_job(tiny_zip, tmp_path, "--epochs", "2", "--resume")

    with open(tmp_path / "run" / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    # The one-cycle schedule ends at 0 only if the step counter came back with the optimizer.
    assert float(rows[-1]["lr"]) == pytest.approx(0.0, abs=1e-7)
    assert json.loads((out / "1" / "model.json").read_text())["training"]["epochs"] == 2


def test_benchmark_flag_measures_an_artifact(trained: Path, capsys: pytest.CaptureFixture) -> None:
    version_dir = trained / "artifacts" / "tiny-cnn" / "1"
    image_classifier.main(["--benchmark", str(version_dir), "--benchmark-seconds", "0.2"])
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["batch_1_images_per_second"] > 0 and figures["batch_64_images_per_second"] > 0


def test_help_explains_every_option(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        image_classifier.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--data",
        "--out",
        "--image-size",
        "--epochs",
        "--resume",
        "--benchmark",
        "--precision",
        "--flip-tta",
        "--val-fraction",
        "--work-dir",
        "--seed",
    ):
        assert option in text
    parser_actions = [a for a in image_classifier.build_parser()._actions if a.dest != "help"]
    assert all(action.help for action in parser_actions)


def test_data_is_required_without_benchmark() -> None:
    with pytest.raises(SystemExit) as exit_info:
        image_classifier.parse_args(["--epochs", "1"])
    assert exit_info.value.code == 2


def test_committed_cifar10_model_meets_the_contract_and_the_bar() -> None:
    model_dir = REPO_ROOT / "artifacts" / "cifar10-cnn"
    if not model_dir.is_dir():
        pytest.skip("no committed cifar10-cnn artifact in this checkout")
    artifact = load_model(model_dir / str(list_versions(model_dir)[-1]))
    card = artifact.card
    assert card.evaluation["split"] == "test" and card.evaluation["images"] == 10_000
    assert card.evaluation["accuracy"] >= 0.88
    assert card.training.seconds <= 3 * 3600
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probabilities = artifact.predict(images)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
