"""Republishing a version: its SavedModel copied byte for byte into the next version, with what its card
lacks: a verification sample of the held-out split its card's figures came from (never training rows), a
text model's tokenizer, and the faithfulness of its explanations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contract.card import check_card
from contract.layout import list_versions
from contract.savedmodel import load_model
from contract.tokens import TokenizerSpec
from contract.verification import read_sample
from tests.tiny_models import add_verification_sample, build_image_model, build_text_model
from tests.training.test_image_data import png_bytes, write_zip
from tests.training.tiny_text import write_imdb_folder, write_imdb_tarball
from training import image_classifier, republish
from training.common import sha256_file
from training.image_data import load_dataset
from training.text_data import TWEET_LABELS, read_imdb, read_tweets
from training.verification_sample import choose_rows

# Class folders named so that their sorted order is the tiny image model's output order (red, green, blue).
COLOURS = {"0-red": (220, 20, 20), "1-green": (20, 220, 20), "2-blue": (20, 20, 220)}


def _files(version_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(version_dir).as_posix(): p.read_bytes() for p in version_dir.rglob("*") if p.is_file()}


def _edit_card(version_dir: Path, **sections: object) -> dict:
    card = json.loads((version_dir / "model.json").read_text()) | sections
    (version_dir / "model.json").write_text(json.dumps(card, indent=2))
    return card


@pytest.fixture
def image_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Version 1 of a tiny image model 'trained' on colours.zip, as its card says; the datasets folder."""
    monkeypatch.setattr(image_classifier, "CACHE_DIR", tmp_path / "cache")
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    tree = {
        f"colours/{split}/{label}/{i}.{'jpg' if i % 2 else 'png'}": png_bytes(
            colour, (10, 12), 100 * s + 10 * k + i, "JPEG" if i % 2 else "PNG"
        )
        for s, (split, count) in enumerate((("train", 2), ("test", 4)))
        for k, (label, colour) in enumerate(COLOURS.items())
        for i in range(count)
    }
    data = write_zip(datasets / "colours.zip", tree)
    model_dir = tmp_path / "artifacts" / "tiny-image"
    version_dir = build_image_model(model_dir / "1")
    (version_dir / "confusion_matrix.png").write_bytes(b"\x89PNG a plot of its evaluation")
    (version_dir / "assets").mkdir(exist_ok=True)
    _edit_card(
        version_dir,
        labels=list(COLOURS),
        evaluation={"split": "test", "images": 12, "accuracy": 1.0, "confusion_matrix": np.diag([4, 4, 4]).tolist()},
        dataset={"name": "colours", "sha256": sha256_file(data), "path": "/where/it/was/colours.zip"},
        training={
            "command": "python -m training.image_classifier --data /where/it/was/colours.zip --out x --image-size 8 8",
            "seconds": 1.0,
            "machine": "test",
        },
    )
    return model_dir, datasets


def test_the_new_version_is_the_old_saved_model_byte_for_byte_with_a_sample(image_model) -> None:
    model_dir, datasets = image_model
    source = model_dir / "1"

    target = republish.main([str(model_dir), "--from-version", "1", "--count", "5", "--datasets", str(datasets)])

    assert target == model_dir / "2" and sorted(p.name for p in model_dir.iterdir()) == ["1", "2"]
    before, after = _files(source), _files(target)
    assert set(after) == set(before) | {"verification.npz"}
    assert {"saved_model.pb", "fingerprint.pb", "confusion_matrix.png"} <= set(before)
    assert any(name.startswith("variables/") for name in before) and (target / "assets").is_dir()
    for name in set(before) - {"model.json"}:
        assert after[name] == before[name], name

    old, card = json.loads(before["model.json"]), json.loads(after["model.json"])
    kept = {k: v for k, v in card.items() if k not in ("version", "republished_from", "verification", "explanations")}
    assert card["version"] == 2 and kept == {k: v for k, v in old.items() if k != "version"}
    assert list(card)[:3] == ["name", "version", "task"]  # the card's order is kept
    origin = card["republished_from"]
    assert (origin["version"], origin["saved_model"]) == (1, "unchanged")
    assert origin["reason"] == f"adds {republish.VERIFICATION}; {republish.EXPLANATIONS}"
    assert origin["what"].endswith("with this section and 'verification', 'explanations' added")
    explanations = card["explanations"]  # measured on the whole held-out split: it has 12 images
    assert (explanations["method"], explanations["grid"], explanations["fill"]) == ("occlusion", 8, 128)
    assert (explanations["faithfulness"]["split"], explanations["faithfulness"]["count"]) == ("test", 12)
    assert [d["parts"] for d in explanations["faithfulness"]["deletions"]] == [16]
    assert origin["files"] == {name: sha256_file(source / name) for name in set(before) - {"model.json"}}
    assert origin["command"].startswith("python -m training.republish ") and "--from-version 1" in origin["command"]
    assert origin["seconds"] >= 0 and "cores" in origin["machine"] and origin["git_commit"]


def test_the_sample_is_held_out_test_images_with_the_models_own_outputs(image_model) -> None:
    model_dir, datasets = image_model
    target = republish.main([str(model_dir), "--from-version", "1", "--count", "5", "--datasets", str(datasets)])

    model = load_model(target)  # the published version loads through the contract
    section = model.card.verification
    assert section is not None and (section.count, section.split) == (5, "test")
    assert section.reference_runtime == "tensorflow float32" and "held out" in section.source
    assert model.card.republished_from is not None and model.card.republished_from.version == 1
    sample = read_sample(target, model.card)
    assert sample is not None
    test = load_dataset(datasets / "colours.zip", 8, 8)  # decoded as training decodes (contract.pixels)
    rows = choose_rows(12, 5)
    assert np.array_equal(sample.inputs, test.test_images[rows])
    assert np.array_equal(sample.labels, test.test_labels[rows])
    assert not any((image == test.train_images).all(axis=(1, 2, 3)).any() for image in sample.inputs)
    np.testing.assert_allclose(model.predict(sample.rows(0, 5)), sample.probabilities, atol=1e-6)
    assert sample.compare(model.predict(sample.rows(0, 5))).failures() == []
    assert section.model_extra is not None and section.model_extra["reference_accuracy"] == 1.0


@pytest.fixture
def text_model(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A tiny text model's folder (version 1 built) and a tiny IMDB tarball in its own datasets folder."""
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    tarball = write_imdb_tarball(write_imdb_folder(tmp_path), datasets)
    model_dir = tmp_path / "artifacts" / "tiny-text"
    build_text_model(model_dir / "1")
    return model_dir, datasets, tarball


def test_a_text_model_gets_its_imdb_test_rows_all_of_them_when_the_split_is_smaller(text_model) -> None:
    model_dir, datasets, tarball = text_model
    source = model_dir / "1"
    _edit_card(
        source,
        evaluation={"split": "IMDB test (20 reviews)", "confusion_matrix": [[6, 4], [3, 7]]},
        dataset={"name": "IMDB", "file": tarball.name, "sha256": sha256_file(tarball), "test": 20},
        training={"command": f"python -m training.sentiment --dataset imdb --data data/{tarball.name} --epochs 2",
                  "seconds": 1.0, "machine": "test"},
    )

    target = republish.main([str(model_dir), "--from-version", "1", "--datasets", str(datasets)])

    model = load_model(target)
    sample = read_sample(target, model.card)
    test = read_imdb(tarball).test
    assert sample is not None and sample.inputs == test.texts and np.array_equal(sample.labels, test.labels)
    np.testing.assert_allclose(model.predict(sample.rows(0, 20)), sample.probabilities, atol=1e-6)
    assert model.card.verification is not None and model.card.verification.count == 20
    assert _files(target)["saved_model.pb"] == _files(source)["saved_model.pb"]


def test_tweets_come_from_the_recorded_stratified_test_split_never_training_rows(tmp_path: Path, tweets_csv) -> None:
    data = read_tweets(tweets_csv, 0.25, seed=42)
    source = tmp_path / "sentiment-tweets" / "4"
    source.mkdir(parents=True)
    (source / "test_ids.txt").write_text("\n".join(data.test.ids) + "\n")
    counts = np.bincount(data.test.labels, minlength=3)
    raw = {
        "name": "sentiment-tweets", "version": 4, "task": "text-classification", "labels": TWEET_LABELS,
        "input": {"max_tokens": 8},
        "evaluation": {"split": data.test_split, "confusion_matrix": np.diag(counts).tolist()},
        "dataset": {"name": "tweets", "file": "Sentiment.csv", "sha256": sha256_file(tweets_csv),
                    "test": len(data.test)},
        "training": {"command": "python -m training.sentiment --dataset tweets --data gop/Sentiment.csv "
                     "--test-fraction 0.25 --final-fit --selected-by runs/gone/results.json",
                     "seconds": 1.0, "machine": "test"},
        "git_commit": "test",
    }

    held = republish.held_out_split(check_card(raw), raw, source, tmp_path, None)

    assert held.inputs == data.test.texts and np.array_equal(held.labels, data.test.labels)
    assert not set(held.inputs) & set(data.train.texts)
    (source / "test_ids.txt").write_text("\n".join(data.train.ids[: len(data.test)]) + "\n")
    with pytest.raises(SystemExit, match="ids are not the ones in test_ids.txt"):
        republish.held_out_split(check_card(raw), raw, source, tmp_path, None)


def test_nothing_is_published_when_the_split_or_dataset_is_not_the_cards(text_model) -> None:
    model_dir, datasets, tarball = text_model
    source = model_dir / "1"
    command = {"command": f"python -m training.sentiment --dataset imdb --data {tarball.name}", "seconds": 1.0,
               "machine": "test"}
    argv = [str(model_dir), "--from-version", "1", "--datasets", str(datasets)]

    _edit_card(source, evaluation={"split": "IMDB test (21 reviews)"}, training=command,
               dataset={"name": "IMDB", "sha256": sha256_file(tarball)})
    with pytest.raises(SystemExit, match=r"rebuilt test split is 'IMDB test \(20 reviews\)'"):
        republish.main(argv)
    _edit_card(source, evaluation={"split": "IMDB test (20 reviews)"}, dataset={"name": "IMDB", "sha256": "1" * 64})
    with pytest.raises(SystemExit, match="no dataset with the card's sha256 1111.*found only .*another sha256"):
        republish.main(argv)
    _edit_card(source, training={"command": "built by hand", "seconds": 1.0, "machine": "test"})
    with pytest.raises(SystemExit, match="not a run of training.image_classifier or training.sentiment"):
        republish.main(argv)
    assert list_versions(model_dir) == [1] and [p.name for p in model_dir.iterdir()] == ["1"]


def test_a_text_version_without_a_tokenizer_gets_its_graphs_and_its_faithfulness(text_model) -> None:
    """A card from before input.tokenizer: the new card declares the spec whose rules the graph runs, with the
    end of long texts its `keeps` names; the sample it had is carried over byte for byte, not drawn again."""
    model_dir, datasets, tarball = text_model
    source = build_text_model(model_dir / "3", declare_tokenizer=False)
    test = read_imdb(tarball).test
    add_verification_sample(source, test.texts[:6], test.labels[:6])
    _edit_card(
        source,
        input={"max_tokens": 64, "keeps": "the tail of longer texts"},
        evaluation={"split": "IMDB test (20 reviews)"},
        dataset={"name": "IMDB", "sha256": sha256_file(tarball)},
        training={"command": f"python -m training.sentiment --dataset imdb --data {tarball.name}", "seconds": 1.0,
                  "machine": "test"},
    )

    target = republish.main([str(model_dir), "--from-version", "3", "--datasets", str(datasets),
                             "--faithfulness-count", "8"])

    model = load_model(target)  # load_model checks the declared tokenizer against the graph's rules
    assert target == model_dir / "4" and model.card.input.tokenizer == TokenizerSpec(keep="tail")
    before, after = _files(source), _files(target)
    assert set(after) == set(before) and all(after[n] == before[n] for n in set(before) - {"model.json"})
    card = json.loads(after["model.json"])
    assert card["verification"] == json.loads(before["model.json"])["verification"]
    origin = card["republished_from"]
    assert origin["reason"] == f"adds {republish.TOKENIZER}; {republish.EXPLANATIONS}"
    assert origin["what"].startswith("the SavedModel, its verification sample and the files")
    assert origin["files"]["verification.npz"] == sha256_file(source / "verification.npz")
    explanations = card["explanations"]
    assert (explanations["method"], explanations["max_words"]) == ("occlusion", 48)
    faithfulness = explanations["faithfulness"]
    assert (faithfulness["split"], faithfulness["count"], faithfulness["seed"]) == ("test", 8, 0)
    assert "float32" in faithfulness["runtime"] and faithfulness["seconds"] >= 0
    # The tiny reviews have no "good" or "bad": every answer is 0.5, nothing lowers it, and the card says so;
    # five of the eight have fewer than 5 words.
    deletions = [(d["parts"], d["count"], d["skipped"], d["mean_drop_top"], d["ratio"])
                 for d in faithfulness["deletions"]]
    assert deletions == [(3, 8, 0, 0.0, None), (5, 3, 5, 0.0, None)]
    assert faithfulness["meets_bar"] is False


def test_a_version_with_nothing_to_add_or_no_known_tokenizer_is_refused(text_model) -> None:
    model_dir, datasets, tarball = text_model
    source = model_dir / "1"
    _edit_card(
        source,
        evaluation={"split": "IMDB test (20 reviews)"},
        dataset={"name": "IMDB", "sha256": sha256_file(tarball)},
        training={"command": f"python -m training.sentiment --dataset imdb --data {tarball.name}", "seconds": 1.0,
                  "machine": "test"},
    )
    argv = [str(model_dir), "--from-version", "1", "--datasets", str(datasets), "--faithfulness-count", "4"]
    republish.main(argv)

    with pytest.raises(SystemExit, match="has a verification sample and explanations already: nothing to add"):
        republish.main([*argv[:2], "2", *argv[3:]])
    without = build_text_model(model_dir / "3", declare_tokenizer=False)
    _edit_card(without, **{k: v for k, v in json.loads((source / "model.json").read_text()).items()
                           if k in ("evaluation", "dataset", "training")})
    with pytest.raises(SystemExit, match=r"input.keeps is None, not 'the head of longer texts'"):
        republish.main([*argv[:2], "3", *argv[3:]])
    assert list_versions(model_dir) == [1, 2, 3]
