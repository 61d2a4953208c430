"""A sentiment model from the user's own CSV, end to end: train, export, card, and served by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contract.savedmodel import load_model
from service.app import create_app
from service.settings import Settings
from tests.training.test_csv_data import three_classes, write_csv
from tests.training.test_sentiment import TINY
from tests.training.tiny_text import write_glove
from training import sentiment
from training.csv_data import Columns, read_labelled_file
from training.text_data import DatasetError


def train_on(path: Path, tmp: Path, *extra: str) -> Path:
    tiny = TINY
    if "random" in extra:  # no pretrained vectors, so no frozen epochs
        at = TINY.index("--frozen-epochs")
        tiny = TINY[:at] + TINY[at + 2 :]
    version_dir = sentiment.main(
        [
            "--data",
            str(path),
            "--text-column",
            "text",
            "--label-column",
            "label",
            "--out",
            str(tmp / "artifacts" / "my-model"),
            "--validation-fraction",
            "0.2",
            *tiny,
            *extra,
        ]
    )
    assert version_dir is not None
    return version_dir


@pytest.fixture(scope="module")
def own_csv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The three-class CSV (quoted commas, quotes and newlines in the texts), trained once."""
    tmp = tmp_path_factory.mktemp("own-csv")
    path = write_csv(tmp / "tickets.csv", three_classes(per_class=12))
    glove = write_glove(tmp / "glove.tiny.8d.txt", 8)
    return tmp, path, train_on(path, tmp, "--glove", str(glove), "--run-dir", str(tmp / "runs"))


def test_the_export_is_an_artifact_with_the_files_labels_in_sorted_order(own_csv_run) -> None:
    tmp, path, version_dir = own_csv_run
    assert version_dir == tmp / "artifacts" / "my-model" / "1"
    artifact = load_model(version_dir)
    assert artifact.card.name == "my-model" and artifact.card.labels == ["mixed", "neg", "pos"]
    probabilities = artifact.predict([b"great, really", b"awful item", b"line one\nline two"])
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # the test split is recorded by row number, and it is the one the reader makes from the seed
    ids = (version_dir / "test_ids.txt").read_text().split()
    assert ids == read_labelled_file(path, Columns("text", "label"), seed=42).test.ids
    assert len(ids) == 6  # round(20% x 12) = 2 of each class


def test_the_card_is_the_built_in_datasets_card(own_csv_run) -> None:
    tmp, path, version_dir = own_csv_run
    card = json.loads((version_dir / "model.json").read_text())
    assert card["dataset"]["file"] == "tickets.csv" and "text column 'text'" in card["dataset"]["name"]
    assert card["evaluation"]["split"].startswith("stratified 20% test split, seed 42 (6 rows")
    assert np.sum(card["evaluation"]["confusion_matrix"]) == 6
    comparison = card["evaluation"]["comparison_same_split"]
    assert {"random_init_embeddings", "tfidf_logistic_regression", "ngram_member_alone"} <= set(comparison)
    assert card["training"]["command"].startswith(f"python -m training.sentiment --data {path}")
    assert "--text-column text --label-column label" in card["training"]["command"]
    assert card["embeddings"]["source"] == "glove.tiny.8d.txt" and card["embeddings"]["vocabulary_found"] > 0
    assert card["calibration"]["fitted_on"].startswith("the validation split")
    assert set(card["monitoring"]["reference"]["predicted_label_share"]) == {"mixed", "neg", "pos"}
    # the verification sample is the held-out test split's 6 rows (fewer than 2,000), declared in the card
    assert (card["verification"]["count"], card["verification"]["split"]) == (6, "test")
    assert (version_dir / card["verification"]["file"]).is_file()
    for png in ("training_curves.png", "confusion_matrix.png", "reliability.png"):
        assert (version_dir / png).stat().st_size > 1000


def test_the_service_serves_it_under_its_folder_name(own_csv_run) -> None:
    tmp, _, _ = own_csv_run
    settings = Settings(artifacts_dir=tmp / "artifacts", default_sentiment_model="my-model", reload_interval_s=0)
    with TestClient(create_app(settings)) as client:
        response = client.post("/sentiment", json={"texts": ["great, really", "awful item"], "model": "my-model"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "my-model" and body["version"] == 1 and len(body["results"]) == 2
    for result in body["results"]:
        assert set(result["probabilities"]) == {"mixed", "neg", "pos"}
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


def test_random_embeddings_for_other_languages(tmp_path: Path) -> None:
    rows = []
    for i in range(10):
        for label, text in (("positif", f"très bien, merci {i}"), ("négatif", f"c'est nul\net triste {i}")):
            rows.append([str(i), text, label])
    path = write_csv(tmp_path / "avis.csv", rows)
    # no --glove: with --embeddings random nothing is read from GloVe at all
    version_dir = train_on(path, tmp_path, "--embeddings", "random", "--run-dir", str(tmp_path / "runs"))
    card = json.loads((version_dir / "model.json").read_text())
    assert card["labels"] == ["négatif", "positif"]
    assert card["embeddings"]["source"].startswith("none: learned from scratch")
    assert "Embedding(random init)" in card["training"]["network"]["layers"]
    assert card["training"]["frozen_epochs"] == 0
    # the main networks already start from random vectors: no separate comparison of that
    assert "random_init_embeddings" not in card["evaluation"]["comparison_same_split"]
    assert not (tmp_path / "runs" / "random-init").exists()
    probabilities = load_model(version_dir).predict(["très bien".encode(), b"c'est nul"])
    assert probabilities.shape == (2, 2)


def test_the_command_line_rules_for_own_files() -> None:
    base = ["--data", "x.csv"]
    assert sentiment.parse_args([*base, "--text-column", "t", "--label-column", "l"]).dataset == "csv"
    args = sentiment.parse_args([*base, "--text-column", "t", "--label-column", "l"])
    assert args.out == Path("artifacts/x") and args.run_dir == Path("runs/x") and not args.social
    for bad in (
        [*base],  # neither a dataset nor columns
        [*base, "--text-column", "t"],  # a label column is needed too
        ["--dataset", "tweets", *base, "--text-column", "t", "--label-column", "l"],
        ["--dataset", "imdb", *base, "--id-column", "id"],
        [*base, "--text-column", "t", "--label-column", "l", "--embeddings", "random", "--frozen-epochs", "1"],
    ):
        with pytest.raises(SystemExit):
            sentiment.parse_args(bad)


def test_a_bad_file_stops_the_job_before_training_with_the_row(tmp_path: Path) -> None:
    rows = three_classes()
    rows[3][1] = ""
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DatasetError, match=r"bad.csv: row 4 \(line 8\): empty text"):
        train_on(path, tmp_path, "--embeddings", "random", "--run-dir", str(tmp_path / "runs"))
    assert not (tmp_path / "artifacts").exists()
