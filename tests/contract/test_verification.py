"""The verification sample: its file round-trips, a reader refuses any disagreement with the card,
and `compare` scores a runtime against the reference with known figures."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from contract import verification
from contract.card import ModelCard, check_card, read_card
from contract.errors import ArtifactError
from contract.verification import (
    THRESHOLDS,
    Agreement,
    Thresholds,
    compare,
    expected_calibration_error,
    read_sample,
    write_sample,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a great film", "", "naïve café, déjà vu 🎬", "日本語のレビュー", "", "line one\nline two\x00end"]


def _card(task: str, labels: list[str], input_spec: dict) -> dict:
    return {
        "name": "tiny",
        "version": 1,
        "task": task,
        "labels": labels,
        "input": input_spec,
        "evaluation": {"split": "test"},
        "dataset": {"name": "none", "sha256": "0" * 64},
        "training": {"command": "made by hand", "seconds": 0, "machine": "test"},
        "git_commit": "test",
    }


def _publish(version_dir: Path, card: dict, section: dict) -> ModelCard:
    """Write the card with the sample's section, as a job does, and read it back."""
    (version_dir / "model.json").write_text(json.dumps({**card, "verification": section}))
    return read_card(version_dir)


def _at(version_dir: Path) -> str:
    """The folder, as a pattern that matches it literally."""
    return re.escape(str(version_dir))


def _probabilities(n: int, classes: int, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(n, classes))
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def image_version(tmp_path: Path) -> tuple[Path, dict, np.ndarray]:
    version_dir = tmp_path / "tiny" / "1"
    version_dir.mkdir(parents=True)
    images = np.random.default_rng(1).integers(0, 256, (7, 6, 5, 3), dtype=np.uint8)
    return version_dir, _card("image-classification", ["a", "b", "c"], {"height": 6, "width": 5}), images


@pytest.fixture
def text_version(tmp_path: Path) -> tuple[Path, dict]:
    version_dir = tmp_path / "tiny" / "1"
    version_dir.mkdir(parents=True)
    return version_dir, _card("text-classification", ["negative", "positive"], {"max_tokens": 8})


def test_images_round_trip_with_their_labels_and_reference_outputs(image_version) -> None:
    version_dir, card, images = image_version
    labels, probabilities = np.array([0, 1, 2, 0, 1, 2, 0]), _probabilities(7, 3)

    section = write_sample(version_dir, images, labels, probabilities, split="test", source="seven test images")
    sample = read_sample(version_dir, _publish(version_dir, card, section))

    assert sample is not None and len(sample) == 7
    assert sample.inputs.dtype == np.uint8 and np.array_equal(sample.inputs, images)
    assert sample.labels.dtype == np.int64 and np.array_equal(sample.labels, labels)
    assert sample.probabilities.dtype == np.float32 and np.array_equal(sample.probabilities, probabilities)
    batches = list(sample.batches(3))
    assert [len(b) for b in batches] == [3, 3, 1] and np.array_equal(np.concatenate(batches), images)
    assert section["file"] == "verification.npz" and section["count"] == 7 and section["split"] == "test"
    assert section["reference_runtime"] == "tensorflow float32"
    assert section["sha256"] == hashlib.sha256((version_dir / "verification.npz").read_bytes()).hexdigest()
    assert section["reference_accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == labels), abs=1e-5)
    with np.load(version_dir / "verification.npz", allow_pickle=False) as saved:  # no pickled objects inside
        assert sorted(saved.files) == ["images", "labels", "probabilities"]


def test_texts_round_trip_exactly_including_non_ascii_and_empty_ones(text_version) -> None:
    version_dir, card = text_version
    labels, probabilities = np.array([1, 0, 1, 0, 0, 1]), _probabilities(6, 2)

    section = write_sample(version_dir, TEXTS, labels, probabilities, split="test", source="six texts")
    sample = read_sample(version_dir, _publish(version_dir, card, section))

    assert sample is not None and sample.inputs == TEXTS
    assert sample.rows(1, 4) == [text.encode("utf-8") for text in TEXTS[1:4]]
    assert [row for batch in sample.batches(4) for row in batch] == [t.encode("utf-8") for t in TEXTS]
    with np.load(version_dir / "verification.npz", allow_pickle=False) as saved:
        assert saved["text_utf8"].dtype == np.uint8 and saved["text_offsets"].dtype == np.int64
        assert saved["text_offsets"].tolist()[:3] == [0, 12, 12]  # the empty text takes no bytes


def test_a_card_without_a_sample_has_none_and_keeps_its_json(text_version) -> None:
    version_dir, card = text_version
    checked = check_card(card)
    assert read_sample(version_dir, checked) is None
    assert "verification" not in checked.to_json() and "republished_from" not in checked.to_json()


def test_a_tampered_file_is_refused_naming_the_folder(image_version) -> None:
    version_dir, card, images = image_version
    section = write_sample(version_dir, images, np.zeros(7, int), _probabilities(7, 3), split="test", source="s")
    checked = _publish(version_dir, card, section)
    path = version_dir / "verification.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match=f"{_at(version_dir)}: verification.npz has sha256 .*, the card says"):
        read_sample(version_dir, checked)
    path.unlink()
    with pytest.raises(ArtifactError, match=f"{_at(version_dir)}: cannot read the card's verification sample"):
        read_sample(version_dir, checked)


def test_images_of_another_size_than_the_cards_are_refused(image_version) -> None:
    version_dir, card, images = image_version
    section = write_sample(version_dir, images, np.zeros(7, int), _probabilities(7, 3), split="test", source="s")
    bigger = card | {"input": {"height": 6, "width": 6}}

    wrong = r"images is uint8 \[7, 6, 5, 3\], the card needs uint8 \[7 x 6 x 6 x 3\]"
    with pytest.raises(ArtifactError, match=rf"{_at(version_dir)}: verification.npz: {wrong}"):
        read_sample(version_dir, _publish(version_dir, bigger, section))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": 8}, r"labels is int64 \[7\], the card needs int64 \[8\]"),
        ({"labels": ["a", "b"]}, r"probabilities is float32 \[7, 3\], the card needs float32 \[7 x 2\]"),
        ({"task": "text-classification", "input": {"max_tokens": 4}}, r"arrays \['images', 'labels', 'probab"),
    ],
)
def test_a_count_classes_or_kind_that_disagree_with_the_card_are_refused(image_version, change, message) -> None:
    version_dir, card, images = image_version
    section = write_sample(version_dir, images, np.zeros(7, int), _probabilities(7, 3), split="test", source="s")
    section = section | {k: v for k, v in change.items() if k == "count"}
    changed = card | {k: v for k, v in change.items() if k != "count"}
    with pytest.raises(ArtifactError, match=f"{_at(version_dir)}: verification.npz: {message}"):
        read_sample(version_dir, _publish(version_dir, changed, section))


def _write_raw(version_dir: Path, **arrays: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    (version_dir / "verification.npz").write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_pickled_objects_and_bytes_that_are_not_utf8_are_refused(text_version) -> None:
    version_dir, card = text_version
    base = {"labels": np.zeros(1, np.int64), "probabilities": np.full((1, 2), 0.5, np.float32)}
    section = {"file": "verification.npz", "count": 1, "split": "test", "source": "s",
               "reference_runtime": "tensorflow float32"}

    digest = _write_raw(version_dir, text_utf8=np.array(["x"], dtype=object), text_offsets=np.array([0, 1]), **base)
    with pytest.raises(ArtifactError, match="not a readable .npz without pickled objects"):
        read_sample(version_dir, _publish(version_dir, card, section | {"sha256": digest}))

    latin1 = np.frombuffer("café".encode("latin-1"), np.uint8)
    digest = _write_raw(version_dir, text_utf8=latin1, text_offsets=np.array([0, 4], np.int64), **base)
    with pytest.raises(ArtifactError, match=f"{_at(version_dir)}: verification.npz: text 0 is not valid UTF-8"):
        read_sample(version_dir, _publish(version_dir, card, section | {"sha256": digest}))


def test_a_malformed_section_is_a_load_time_error_naming_the_folder(text_version) -> None:
    version_dir, card = text_version
    good = {"file": "verification.npz", "count": 3, "split": "test", "source": "s", "sha256": "a" * 64,
            "reference_runtime": "tensorflow float32"}
    for bad in ({"count": 0}, {"sha256": "not-a-digest"}, {"file": "../elsewhere.npz"}, {"split": None}):
        (version_dir / "model.json").write_text(json.dumps(card | {"verification": good | bad}))
        with pytest.raises(ArtifactError, match=f"{_at(version_dir)}/model.json: malformed model card"):
            read_card(version_dir)
    (version_dir / "model.json").write_text(json.dumps(card | {"verification": good}))
    assert read_card(version_dir).verification is not None


def test_write_sample_refuses_what_the_format_cannot_hold(tmp_path: Path) -> None:
    probabilities = _probabilities(2, 2)
    with pytest.raises(ValueError, match="images must be uint8"):
        floats = np.zeros((2, 4, 4, 3), np.float32)
        write_sample(tmp_path, floats, np.zeros(2, int), probabilities, split="t", source="s")
    with pytest.raises(ValueError, match="probabilities must be float32"):
        write_sample(tmp_path, ["a", "b"], np.zeros(2, int), probabilities.astype(np.float64), split="t", source="s")
    with pytest.raises(ValueError, match="labels must index the 2 classes"):
        write_sample(tmp_path, ["a", "b"], np.array([0, 2]), probabilities, split="t", source="s")
    assert not (tmp_path / "verification.npz").exists()


# --- compare ----------------------------------------------------------------------------------------

# Confidences 0.95, 0.85, 0.75, 0.65 fall in four different bins of 15, so each bin's gap is one answer's.
REFERENCE = np.array([[0.95, 0.05], [0.85, 0.15], [0.25, 0.75], [0.65, 0.35]])
CANDIDATE = np.array([[0.95, 0.05], [0.15, 0.85], [0.25, 0.75], [0.65, 0.35]])
LABELS = np.array([0, 0, 1, 1])


def test_compare_gives_the_hand_computed_figures() -> None:
    agreement = compare(REFERENCE, CANDIDATE, LABELS)

    assert agreement.count == 4
    assert agreement.top1_agreement == pytest.approx(0.75)  # the second row changes class
    assert agreement.reference_accuracy == pytest.approx(0.75)  # the last row is wrong for both
    assert agreement.candidate_accuracy == pytest.approx(0.5)
    # ECE: the mean of |right - confidence| over the four one-answer bins
    assert agreement.reference_ece == pytest.approx((0.05 + 0.15 + 0.25 + 0.65) / 4)
    assert agreement.candidate_ece == pytest.approx((0.05 + 0.85 + 0.25 + 0.65) / 4)
    assert agreement.max_abs_difference == pytest.approx(0.7)
    assert compare(REFERENCE, REFERENCE, LABELS).failures() == []


def test_failures_name_every_missed_criterion_with_its_figures() -> None:
    assert compare(REFERENCE, CANDIDATE, LABELS).failures() == [
        "top-1 agreement 75.00% < 99.5%",
        "accuracy 50.00% is 25.00 points below the reference's 75.00% (at most 0.3 allowed)",
        "ECE 0.4500 is 0.1750 above the reference's 0.2750 (at most 0.01 allowed)",
    ]
    lenient = Thresholds(min_top1_agreement=0.75, max_accuracy_drop=0.25, max_ece_increase=0.2)
    assert compare(REFERENCE, CANDIDATE, LABELS).failures(lenient) == []


def _agreement(**figures: float) -> Agreement:
    base = dict(count=2000, top1_agreement=1.0, reference_accuracy=0.9015, candidate_accuracy=0.9015,
                reference_ece=0.02, candidate_ece=0.02, max_abs_difference=0.01)
    return Agreement(**{**base, **figures})  # type: ignore[arg-type]


def test_each_criterion_fails_alone_and_a_figure_at_its_threshold_passes() -> None:
    assert Thresholds(0.995, 0.003, 0.01) == THRESHOLDS
    assert _agreement(top1_agreement=0.9931).failures() == ["top-1 agreement 99.31% < 99.5%"]
    assert _agreement(candidate_accuracy=0.8980).failures() == [
        "accuracy 89.80% is 0.35 points below the reference's 90.15% (at most 0.3 allowed)"
    ]
    assert _agreement(candidate_ece=0.0312).failures() == [
        "ECE 0.0312 is 0.0112 above the reference's 0.0200 (at most 0.01 allowed)"
    ]
    at_thresholds = _agreement(top1_agreement=1990 / 2000, candidate_accuracy=0.8985, candidate_ece=0.03)
    assert at_thresholds.failures() == []
    # a candidate better than the reference never fails for it
    assert _agreement(candidate_accuracy=0.95, candidate_ece=0.0).failures() == []


def test_compare_refuses_arrays_that_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="reference and candidate"):
        compare(REFERENCE, CANDIDATE[:3], LABELS)
    with pytest.raises(ValueError, match="labels"):
        compare(REFERENCE, CANDIDATE, LABELS[:3])


def test_the_sample_compares_a_candidate_with_its_reference(text_version) -> None:
    version_dir, card = text_version
    probabilities = _probabilities(6, 2)
    labels = probabilities.argmax(axis=1)
    section = write_sample(version_dir, TEXTS, labels, probabilities, split="test", source="s")
    sample = read_sample(version_dir, _publish(version_dir, card, section))
    assert sample is not None
    agreement = sample.compare(probabilities[:, ::-1])  # every answer flipped
    assert agreement.top1_agreement == 0.0 and agreement.reference_accuracy == 1.0
    assert agreement.to_json()["candidate_accuracy"] == 0.0


def test_there_is_one_ece_and_training_uses_it() -> None:
    from training import calibration

    assert calibration.expected_calibration_error is expected_calibration_error
    assert calibration.ECE_DEFINITION == verification.ECE_DEFINITION
    assert "15 equal-width bins" in calibration.ECE_DEFINITION


def test_every_committed_card_still_loads() -> None:
    cards = sorted((REPO_ROOT / "artifacts").glob("*/*/model.json"))
    if not cards:
        pytest.skip("no committed artifacts in this checkout")
    for path in cards:
        read_card(path.parent)  # read-only
