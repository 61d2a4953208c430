"""The sentiment job end to end on tiny data: export, contract, card, resume, --help."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from contract.layout import newest_version_dir
from contract.savedmodel import load_model
from contract.tokens import TokenizerSpec
from contract.verification import read_sample
from tests.training.tiny_text import (
    TWEETS_SKIPPED,
    write_glove,
    write_imdb_folder,
    write_imdb_tarball,
)
from training import sentiment
from training.calibration import apply_temperature, expected_calibration_error
from training.common import REPO_ROOT, sha256_file
from training.text_data import read_imdb, read_tweets

TINY = [
    "--embedding-dim",
    "8",
    "--lstm-units",
    "4",
    "--vocabulary-size",
    "60",
    "--max-tokens",
    "6",
    "--epochs",
    "2",
    "--frozen-epochs",
    "1",
    "--random-init-epochs",
    "1",
    "--batch-size",
    "8",
    "--throughput-seconds",
    "0.05",
]


def run_job(tmp: Path, dataset: str, data: Path, glove: Path, *extra: str) -> Path | None:
    return sentiment.main(
        [
            "--dataset",
            dataset,
            "--data",
            str(data),
            "--glove",
            str(glove),
            "--out",
            str(tmp / "artifacts" / f"sentiment-{dataset}"),
            "--run-dir",
            str(tmp / "runs" / dataset),
            *TINY,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def imdb_run(tmp_path_factory: pytest.TempPathFactory):
    """One tiny IMDB training run shared by the tests below (the slow part: a few seconds)."""
    tmp = tmp_path_factory.mktemp("imdb")
    tarball = write_imdb_tarball(write_imdb_folder(tmp), tmp)
    glove = write_glove(tmp / "glove.tiny.8d.txt", 8)
    return tmp, tarball, glove, run_job(tmp, "imdb", tarball, glove)


def test_export_satisfies_the_contract_and_answers_any_text(imdb_run) -> None:
    tmp, _, _, version_dir = imdb_run
    assert version_dir == tmp / "artifacts" / "sentiment-imdb" / "1"
    artifact = load_model(version_dir)
    texts = [
        b"a great wonderful film",
        b"a terrible boring film",
        b"",
        " ".join(["film"] * 5000).encode(),
    ]
    probabilities = artifact.predict(texts)
    assert probabilities.shape == (4, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1])  # the answer depends on the text
    # batching must not change a text's answer (padding is masked)
    alone = artifact.predict([b"a great wonderful film"])
    np.testing.assert_allclose(alone[0], probabilities[0], atol=1e-5)


def test_card_records_what_the_issue_asks(imdb_run) -> None:
    tmp, tarball, _, version_dir = imdb_run
    card = json.loads((version_dir / "model.json").read_text())
    assert (card["name"], card["version"], card["task"]) == (
        "sentiment-imdb",
        1,
        "text-classification",
    )
    assert card["labels"] == ["negative", "positive"]
    assert card["input"]["max_tokens"] == 6
    evaluation = card["evaluation"]
    assert evaluation["split"] == "IMDB test (20 reviews)"
    assert 0 <= evaluation["accuracy"] <= 1 and 0 <= evaluation["macro_f1"] <= 1
    assert set(evaluation["per_class"]) == {"negative", "positive"}
    assert np.sum(evaluation["confusion_matrix"]) == 20
    assert (
        evaluation["texts_per_second"]["batch_1"] > 0
        and evaluation["texts_per_second"]["batch_64"] > 0
    )
    comparison = evaluation["comparison_same_split"]
    assert set(comparison) == {"random_init_embeddings", "tfidf_logistic_regression"}
    assert all(np.sum(c["confusion_matrix"]) == 20 for c in comparison.values())
    assert card["dataset"]["sha256"] == sha256_file(tarball)
    assert (card["dataset"]["train"], card["dataset"]["validation"], card["dataset"]["test"]) == (
        36,
        4,
        20,
    )
    assert card["training"]["command"].startswith("python -m training.sentiment --dataset imdb")
    assert card["training"]["seconds"] > 0 and card["training"]["machine"]
    assert (
        card["embeddings"]["vocabulary_found"] > 0 and card["embeddings"]["vocabulary_missed"] > 0
    )
    assert card["git_commit"]
    for png in ("training_curves.png", "confusion_matrix.png", "reliability.png"):
        assert (version_dir / png).stat().st_size > 1000


def test_the_exported_graph_carries_the_temperature_fitted_on_validation(imdb_run) -> None:
    tmp, tarball, *_ = imdb_run
    version_dir = tmp / "artifacts" / "sentiment-imdb" / "1"
    card = json.loads((version_dir / "model.json").read_text())
    calibration = card["calibration"]
    assert calibration["fitted_on"].startswith("the validation split: 4 rows")
    assert calibration["fitted_on_count"] == 4 and calibration["reliability_diagram"] == "reliability.png"
    temperature = calibration["temperature"]
    assert 0.05 <= temperature <= 20 and f"T = {temperature:.4f}" in card["training"]["network"]["layers"]
    # the served answers are the calibrated ones: their ECE is the card's "after"; undoing T
    # (softmax(T * log p)) gives back the networks' own answers, whose ECE is the card's "before"
    data = read_imdb(tarball)
    served = load_model(version_dir).predict([t.encode() for t in data.test.texts])
    assert expected_calibration_error(served, data.test.labels) == pytest.approx(
        calibration["test"]["after"]["ece"], abs=1e-4
    )
    undone = apply_temperature(served, 1.0 / temperature)
    assert expected_calibration_error(undone, data.test.labels) == pytest.approx(
        calibration["test"]["before"]["ece"], abs=1e-3
    )
    assert calibration["test"]["predictions_changed"] == 0
    assert calibration["test"]["accuracy"] == card["evaluation"]["accuracy"]


def test_card_has_the_drift_reference_of_the_test_split(imdb_run) -> None:
    tmp, tarball, *_ = imdb_run
    card = json.loads((tmp / "artifacts" / "sentiment-imdb" / "1" / "model.json").read_text())
    reference = card["monitoring"]["reference"]
    assert reference["count"] == 20 and reference["split"] == card["evaluation"]["split"]
    assert set(reference["predicted_label_share"]) == {"negative", "positive"}
    assert sum(reference["predicted_label_share"].values()) == pytest.approx(1.0, abs=1e-5)
    predicted = np.sum(card["evaluation"]["confusion_matrix"], axis=0) / 20
    assert list(reference["predicted_label_share"].values()) == pytest.approx(predicted.tolist(), abs=1e-5)
    top1 = reference["top1_probability"]
    assert len(top1["edges"]) == 11 and sum(top1["share"]) == pytest.approx(1.0, abs=1e-5)
    assert sum(top1["share"][:5]) == 0  # two classes: the top probability is at least 0.5
    lengths = reference["input"]["text_length_chars"]
    assert lengths["edges"][-1] is None and sum(lengths["share"]) == pytest.approx(1.0, abs=1e-5)
    # the tiny reviews are 14-34 characters long: all in [0, 20) or [20, 50)
    assert lengths["share"][0] + lengths["share"][1] == pytest.approx(1.0, abs=1e-5)


def test_the_version_carries_a_verification_sample_of_the_test_split(imdb_run) -> None:
    tmp, tarball, _, version_dir = imdb_run
    artifact = load_model(version_dir)
    section = artifact.card.verification
    assert section is not None and (section.count, section.split) == (20, "test")
    assert "IMDB test (20 reviews)" in section.source and "never learned from them" in section.source
    sample = read_sample(version_dir, artifact.card)
    test = read_imdb(tarball).test
    assert sample is not None and sample.inputs == test.texts and np.array_equal(sample.labels, test.labels)
    np.testing.assert_allclose(artifact.predict(sample.rows(0, 20)), sample.probabilities, atol=1e-5)


def test_history_has_one_row_per_epoch(imdb_run) -> None:
    tmp, *_ = imdb_run
    with open(tmp / "runs" / "imdb" / "glove" / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1]


def test_rerun_needs_resume_and_resume_continues(imdb_run) -> None:
    tmp, tarball, glove, _ = imdb_run
    with pytest.raises(SystemExit, match="--resume"):
        run_job(tmp, "imdb", tarball, glove)
    version_dir = run_job(tmp, "imdb", tarball, glove, "--resume", "--epochs", "3")
    assert version_dir == tmp / "artifacts" / "sentiment-imdb" / "2"
    with open(tmp / "runs" / "imdb" / "glove" / "history.csv") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [0, 1, 2]
    state = json.loads((tmp / "runs" / "imdb" / "glove" / "state.json").read_text())
    assert state["epoch"] == 3 and len(state["commands"]) == 2


def test_tweets_job_writes_its_test_ids(tmp_path: Path, tweets_csv: Path, glove_txt: Path) -> None:
    version_dir = run_job(
        tmp_path, "tweets", tweets_csv, glove_txt, "--test-fraction", "0.25", "--verification-count", "5"
    )
    card = json.loads((version_dir / "model.json").read_text())
    assert card["labels"] == ["negative", "neutral", "positive"]
    assert card["dataset"]["skipped"] == TWEETS_SKIPPED
    ids = (version_dir / "test_ids.txt").read_text().split()
    split = read_tweets(tweets_csv, 0.25, seed=42)
    assert ids == split.test.ids
    # the verification sample: 5 of the held-out test tweets, none of the training ones
    sample = read_sample(version_dir, load_model(version_dir).card)
    assert card["verification"]["count"] == 5 and sample is not None and len(sample) == 5
    assert set(sample.inputs) <= set(split.test.texts) and not set(sample.inputs) & set(split.train.texts)
    assert load_model(version_dir).predict([b"RT @x: #GOPDebate http://t.co/y"]).shape == (1, 3)
    # tweets default to the n-gram member and confidence weights; the card says so
    training = card["training"]
    assert "n-gram member" in training["network"]["layers"]
    assert training["ngram_member"]["epochs"] == 5 and training["ngram_member"]["best_epoch"] >= 1
    assert "sentiment_confidence" in training["sample_weights"]
    comparison = card["evaluation"]["comparison_same_split"]
    assert set(comparison) == {
        "random_init_embeddings",
        "tfidf_logistic_regression",
        "glove_networks_alone",
        "ngram_member_alone",
    }
    assert "same n-gram member" in comparison["random_init_embeddings"]["model"]
    assert "annotator confidence" in comparison["tfidf_logistic_regression"]["sample_weights"]
    assert comparison["tfidf_logistic_regression"]["learned_from"] == "training"
    assert all(np.sum(c["confusion_matrix"]) == len(ids) for c in comparison.values())


def test_no_ngram_member_serves_the_glove_network_alone(tmp_path, tweets_csv, glove_txt) -> None:
    version_dir = run_job(
        tmp_path, "tweets", tweets_csv, glove_txt, "--no-ngram-member", "--no-confidence-weights"
    )
    card = json.loads((version_dir / "model.json").read_text())
    assert "ngram_member" not in card["training"] and "sample_weights" not in card["training"]
    assert "n-gram" not in card["training"]["network"]["layers"]
    assert set(card["evaluation"]["comparison_same_split"]) == {
        "random_init_embeddings",
        "tfidf_logistic_regression",
    }
    assert not (tmp_path / "runs" / "tweets" / "ngram").exists()


def test_cross_validation_scores_each_part_on_held_out_folds_and_exports_nothing(
    tmp_path: Path, tweets_csv: Path, glove_txt: Path
) -> None:
    assert run_job(tmp_path, "tweets", tweets_csv, glove_txt, "--cross-validate", "3") is None
    assert not (tmp_path / "artifacts").exists()
    out = tmp_path / "runs" / "tweets" / "cross-validation"
    results = json.loads((out / "results.json").read_text())
    assert results["folds"] == 3 and "--cross-validate 3" in results["command"]
    accuracy = results["accuracy"]
    assert set(accuracy) == {"glove", "ngram", "served", "tfidf_logistic_regression"}
    for figures in accuracy.values():
        assert len(figures["folds"]) == 3 and all(0 <= a <= 1 for a in figures["folds"])
        assert figures["mean_accuracy"] == pytest.approx(np.mean(figures["folds"]))
    for k in (1, 2, 3):  # each fold fits its own vocabulary and networks
        for path in ("vocabulary.json", "glove/state.json", "ngram/state.json"):
            assert (out / f"fold-{k}" / path).is_file()
    # every training row has served probabilities from the fold model that did not learn from it
    with np.load(out / results["out_of_fold"]["file"]) as oof:
        train = read_tweets(tweets_csv, 0.2, seed=42).train
        assert oof["ids"].tolist() == train.ids and np.array_equal(oof["labels"], train.labels)
        assert oof["probabilities"].shape == (len(train), 3)
        np.testing.assert_allclose(oof["probabilities"].sum(axis=1), 1.0, atol=1e-5)
        fold_accuracy = np.mean(oof["probabilities"].argmax(1) == train.labels)
    # the folds are of equal size within one row, so the pooled accuracy is the folds' mean
    assert fold_accuracy == pytest.approx(accuracy["served"]["mean_accuracy"], abs=0.02)
    # the run that then trains on everything records the cross-validation that chose it
    version_dir = run_job(
        tmp_path, "tweets", tweets_csv, glove_txt, "--final-fit", "--selected-by", str(out / "results.json")
    )
    card = json.loads((version_dir / "model.json").read_text())
    selection = card["training"]["selected_by_cross_validation"]
    assert selection["command"] == results["command"] and selection["folds"] == 3
    assert selection["mean_accuracy"]["served"] == round(accuracy["served"]["mean_accuracy"], 4)
    # a final fit learned from validation too: its temperature comes from the out-of-fold answers
    calibration = card["calibration"]
    assert calibration["fitted_on"].startswith("out-of-fold predictions of the 3-fold cross-validation")
    assert calibration["fitted_on_count"] == len(train)
    assert calibration["fit_data"]["after"]["nll"] <= calibration["fit_data"]["before"]["nll"]
    # out-of-fold answers for other rows (another seed, so another test split) are refused
    with pytest.raises(SystemExit, match="other training rows"):
        run_job(
            tmp_path, "tweets", tweets_csv, glove_txt, "--final-fit", "--seed", "7",
            "--selected-by", str(out / "results.json"),
        )
    del results["out_of_fold"]
    (out / "old-results.json").write_text(json.dumps(results))
    with pytest.raises(SystemExit, match="no out-of-fold predictions"):
        run_job(
            tmp_path, "tweets", tweets_csv, glove_txt, "--final-fit", "--selected-by", str(out / "old-results.json")
        )


def test_a_final_fit_without_out_of_fold_predictions_must_say_no_calibration() -> None:
    with pytest.raises(SystemExit):
        sentiment.parse_args(["--dataset", "tweets", "--data", "x.csv", "--final-fit"])
    args = sentiment.parse_args(["--dataset", "tweets", "--data", "x.csv", "--final-fit", "--no-calibrate"])
    assert not args.calibrate


def test_make_served_classifier_is_the_mean_of_glove_and_ngram_parts() -> None:
    from training.sentiment_model import (
        NetworkConfig,
        make_classifier,
        make_ngram_classifier,
        make_served_classifier,
    )

    glove = make_classifier(NetworkConfig(20, 4, 3, 0.0, 3), None)
    ngram = make_ngram_classifier(20, 16, 3)
    ngram.get_layer("ngram_weights").set_weights([np.random.default_rng(0).normal(size=(36, 3))])
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    expected = (glove(ids, training=False).numpy() + ngram(ids, training=False).numpy()) / 2
    served = make_served_classifier(glove, ngram)
    np.testing.assert_allclose(served(ids, training=False), expected, atol=1e-6)
    assert make_served_classifier(glove, None) is glove


def test_confidence_weights_are_for_tweets_only() -> None:
    with pytest.raises(SystemExit):
        sentiment.parse_args(["--dataset", "imdb", "--data", "x", "--confidence-weights"])
    assert sentiment.parse_args(["--dataset", "imdb", "--data", "x"]).confidence_weights is False


def test_train_only_trains_one_network_and_exports_nothing(tmp_path, tweets_csv, glove_txt) -> None:
    assert run_job(tmp_path, "tweets", tweets_csv, glove_txt, "--train-only", "random-init") is None
    assert (tmp_path / "runs" / "tweets" / "random-init" / "state.json").is_file()
    assert not (tmp_path / "runs" / "tweets" / "glove").exists()
    assert not (tmp_path / "runs" / "tweets" / "ngram").exists()
    assert not (tmp_path / "artifacts").exists()
    assert run_job(tmp_path, "tweets", tweets_csv, glove_txt, "--train-only", "ngram") is None
    assert (tmp_path / "runs" / "tweets" / "ngram" / "state.json").is_file()
    assert not (tmp_path / "runs" / "tweets" / "glove").exists()


def test_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sentiment.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dataset",
        "--data",
        "--glove",
        "--resume",
        "--max-tokens",
        "--keep",
        "--epochs",
        "--ngram-member",
        "--confidence-weights",
        "--cross-validate",
    ):
        assert option in text


def test_ensemble_averages_its_members_in_one_exported_graph(
    tmp_path: Path, tweets_csv: Path, glove_txt: Path
) -> None:
    version_dir = run_job(tmp_path, "tweets", tweets_csv, glove_txt, "--ensemble", "2")
    card = json.loads((version_dir / "model.json").read_text())
    ensemble = card["training"]["ensemble"]
    assert ensemble["members"] == 2 and ensemble["seeds"] == [42, 43]
    assert len(ensemble["best_epochs"]) == 2 and len(ensemble["members_best_val_accuracy"]) == 2
    assert 0 <= card["training"]["best_val_accuracy"] <= 1
    assert "mean of 2 networks" in card["training"]["network"]["layers"]
    for member in ("glove", "glove-2"):
        assert (tmp_path / "runs" / "tweets" / member / "state.json").is_file()
    probabilities = load_model(version_dir).predict([b"great", b"awful debate"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_make_ensemble_is_the_mean_of_its_members() -> None:
    from training.sentiment_model import NetworkConfig, make_classifier, make_ensemble

    config = NetworkConfig(20, 4, 3, 0.0, 3)
    members = [make_classifier(config, None, name=f"m{i}") for i in range(3)]
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    expected = np.mean([m(ids, training=False).numpy() for m in members], axis=0)
    np.testing.assert_allclose(make_ensemble(members)(ids, training=False), expected, atol=1e-6)
    assert make_ensemble(members[:1]) is members[0]


def test_ensemble_must_have_a_member() -> None:
    with pytest.raises(SystemExit):
        sentiment.parse_args(["--dataset", "tweets", "--data", "x.csv", "--ensemble", "0"])


def test_selected_by_must_exist_before_training_starts(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        sentiment.parse_args(["--dataset", "tweets", "--data", "x", "--selected-by", str(tmp_path / "no.json")])


def test_cross_validation_needs_two_folds() -> None:
    with pytest.raises(SystemExit):
        sentiment.parse_args(["--dataset", "tweets", "--data", "x.csv", "--cross-validate", "1"])


def test_final_fit_learns_from_validation_too_and_keeps_the_last_epoch(
    tmp_path: Path, tweets_csv: Path, glove_txt: Path
) -> None:
    version_dir = run_job(
        tmp_path, "tweets", tweets_csv, glove_txt, "--final-fit", "--lstm-layers", "2", "--no-calibrate"
    )
    card = json.loads((version_dir / "model.json").read_text())
    plain = read_tweets(tweets_csv, 0.2, seed=42)
    assert (card["dataset"]["train"], card["dataset"]["validation"]) == (len(plain.train), 0)
    assert "training + validation" in card["training"]["final_fit"]
    assert card["training"]["best_epoch"] == 2 and card["training"]["best_val_accuracy"] is None
    assert card["training"]["network"]["lstm_layers"] == 2
    assert card["training"]["network"]["layers"].count("Bidirectional(LSTM)") == 2
    assert card["calibration"]["method"].startswith("none") and 0 <= card["calibration"]["test"]["ece"] <= 1
    assert "temperature" not in card["training"]["network"]["layers"]
    assert not (version_dir / "reliability.png").exists()
    baseline = card["evaluation"]["comparison_same_split"]["tfidf_logistic_regression"]
    assert baseline["learned_from"] == "training + validation"
    assert load_model(version_dir).predict([b"good"]).shape == (1, 3)
    with open(tmp_path / "runs" / "tweets" / "glove" / "history.csv") as handle:
        assert next(csv.reader(handle)) == ["epoch", "accuracy", "loss"]


@pytest.mark.parametrize(("name", "accuracy_bar"), [("sentiment-imdb", 0.91), ("sentiment-tweets", 0.70)])
def test_committed_sentiment_model_beats_its_baseline_with_calibrated_probabilities(
    name: str, accuracy_bar: float
) -> None:
    """The served (newest) version of each committed text model: issue 14's bars, read from its card,
    and a model that loads and answers."""
    model_dir = REPO_ROOT / "artifacts" / name
    if not model_dir.is_dir():
        pytest.skip(f"no committed {name} artifact in this checkout")
    artifact = load_model(newest_version_dir(model_dir))
    evaluation = artifact.card.evaluation
    assert evaluation["accuracy"] >= accuracy_bar
    assert evaluation["accuracy"] > evaluation["comparison_same_split"]["tfidf_logistic_regression"]["accuracy"]
    assert artifact.card.calibration["test"]["after"]["ece"] <= 0.03
    assert artifact.card.calibration["test"]["predictions_changed"] == 0
    probabilities = artifact.predict(["A wonderful, moving film. I loved it.", "Dull, tedious and badly acted."])
    assert probabilities.shape == (2, len(artifact.card.labels))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_version_declares_its_tokenizer_and_its_explanations_faithfulness(imdb_run) -> None:
    """What the service explains with (the words the graph sees) and how faithful that is, on the test split."""
    _, _, _, version_dir = imdb_run
    card = load_model(version_dir).card  # load_model checks the declared tokenizer against the graph
    assert card.input.tokenizer == TokenizerSpec(social=False, split_hashtags=False, keep="tail")  # type: ignore[attr-defined]
    section = card.model_extra["explanations"]  # type: ignore[index]
    assert (section["method"], section["max_words"]) == ("occlusion", 48)
    faithfulness = section["faithfulness"]
    assert (faithfulness["split"], faithfulness["count"]) == ("test", 20)
    assert [d["parts"] for d in faithfulness["deletions"]] == [3, 5]
    assert all(d["count"] + d["skipped"] == 20 for d in faithfulness["deletions"])
