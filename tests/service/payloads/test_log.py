"""PayloadLog on its own: the records' fields, sampling, hash mode, image bytes, rotation, drops, close."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from service.core.handlers.image import EncodedImage
from service.core.inference import Prediction
from service.core.metrics import Metrics
from service.payloads.log import PayloadLog
from service.settings import Settings


@dataclass
class _Card:
    task: str


@dataclass
class _Version:
    """The parts of a ModelVersion a record names: a loaded SavedModel adds nothing the log reads."""

    name: str
    version: int
    labels: list[str]
    card: _Card


TEXT_VERSION = _Version("reviews", 3, ["negative", "positive"], _Card("text-classification"))
IMAGE_VERSION = _Version("colours", 1, ["red", "green", "blue"], _Card("image-classification"))


def text_answer(texts: list[str]) -> tuple[Prediction, list[dict]]:
    """A prediction for `texts` as TextHandler words it: P(positive) grows with the text's length."""
    positive = np.array([min(0.99, len(t) / 100) for t in texts], dtype=np.float32)
    outputs = np.stack([1 - positive, positive], axis=1)
    results = [{"label": TEXT_VERSION.labels[int(row.argmax())],
                "probabilities": dict(zip(TEXT_VERSION.labels, row.tolist(), strict=True))} for row in outputs]
    return Prediction(TEXT_VERSION, outputs, len(texts)), results  # type: ignore[arg-type]


def image_answer(count: int) -> tuple[Prediction, list[dict]]:
    """A prediction for `count` images whose answers, like ImageHandler's with top_k=1, list one label."""
    outputs = np.tile(np.array([[0.1, 0.7, 0.2]], dtype=np.float32), (count, 1))
    results = [{"filename": None, "label": "green", "probability": 0.7, "top_k": [{"label": "green",
                                                                                     "probability": 0.7}]}] * count
    return Prediction(IMAGE_VERSION, outputs, count), results  # type: ignore[arg-type]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def written(log: PayloadLog) -> list[dict]:
    """Every record in the log's folder, oldest file first."""
    files = sorted(log.folder.glob("*.jsonl"), key=lambda p: -int(p.suffixes[0][1:]) if len(p.suffixes) > 1 else 0)
    return [record for path in files for record in read(path)]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def make_log(tmp_path: Path, metrics: Metrics):
    logs = []

    def make(**options) -> PayloadLog:
        log = PayloadLog(tmp_path / "payloads", metrics, **options)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


def sample_value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_each_text_gets_a_record_with_the_request_the_model_and_its_answer(make_log, metrics: Metrics) -> None:
    log = make_log()
    log.start()
    texts = ["short", "a somewhat longer text, past the middle" * 2, "mid-length text here"]
    prediction, results = text_answer(texts)
    before = datetime.now(UTC)
    log.record("req-1", "4bf92f3577b34da6a3ce929d0e0e4736", prediction, texts, results)
    log.close()

    records = read(log.path)
    assert log.path.name == f"payloads-{os.getpid()}.jsonl"  # a file per process
    assert [r["index"] for r in records] == [0, 1, 2]
    for record, text, result in zip(records, texts, results, strict=True):
        assert list(record) == ["time", "request_id", "index", "trace_id", "model", "version", "task", "prediction",
                                "probabilities", "text_sha256", "text"]
        when = datetime.fromisoformat(record["time"])
        assert when.utcoffset().total_seconds() == 0 and abs((when - before).total_seconds()) < 5
        assert (record["request_id"], record["trace_id"]) == ("req-1", "4bf92f3577b34da6a3ce929d0e0e4736")
        assert (record["model"], record["version"], record["task"]) == ("reviews", 3, "text-classification")
        assert record["prediction"] == result["label"]
        assert record["probabilities"] == pytest.approx(result["probabilities"])
        assert record["text"] == text
        assert record["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert [r["prediction"] for r in records] == ["negative", "positive", "negative"]
    assert sample_value(metrics, "service_payload_log_records_total") == 3


def test_hash_mode_keeps_only_each_texts_sha256(make_log) -> None:
    log = make_log(texts="hash")
    log.start()
    prediction, results = text_answer(["private words"])
    log.record("req-1", None, prediction, ["private words"], results)
    log.close()
    [record] = read(log.path)
    assert "text" not in record and "private words" not in log.path.read_text()
    assert record["text_sha256"] == hashlib.sha256(b"private words").hexdigest()
    assert record["trace_id"] is None


@pytest.mark.parametrize("keep_bytes", [False, True])
def test_images_keep_their_bytes_only_when_asked_and_every_class_probability(make_log, keep_bytes: bool) -> None:
    log = make_log(images=keep_bytes)
    log.start()
    images = [EncodedImage(b"\x89PNG first", "cat.png"), EncodedImage(b"second image", None)]
    prediction, results = image_answer(2)
    log.record("req-9", None, prediction, images, results)
    log.close()
    records = read(log.path)
    assert [r["filename"] for r in records] == ["cat.png", None]
    assert [r["image_sha256"] for r in records] == [hashlib.sha256(i.data).hexdigest() for i in images]
    # the answer listed its top label only; the record has every class's probability
    assert records[0]["probabilities"] == pytest.approx({"red": 0.1, "green": 0.7, "blue": 0.2})
    assert records[0]["prediction"] == "green" and records[0]["task"] == "image-classification"
    if keep_bytes:
        assert [base64.b64decode(r["image_base64"]) for r in records] == [i.data for i in images]
    else:
        assert all("image_base64" not in r for r in records)


@pytest.mark.parametrize(("share", "low", "high"), [(0.0, 0, 0), (0.25, 800, 1200), (1.0, 4000, 4000)])
def test_the_sample_setting_is_the_share_of_requests_logged(make_log, share: float, low: int, high: int) -> None:
    log = make_log(sample=share)
    log.start()
    prediction, results = text_answer(["a", "b"])
    for i in range(4000):
        log.record(f"req-{i}", None, prediction, ["a", "b"], results)
    log.close()
    records = read(log.path)
    requests = {r["request_id"] for r in records}
    assert low <= len(requests) <= high  # 0.25: 1000 expected, the bounds are 7 standard deviations out
    assert len(records) == 2 * len(requests)  # a request is kept whole or not at all


def test_files_rotate_at_the_size_and_only_the_newest_are_kept(make_log) -> None:
    log = make_log(max_bytes=4096, files=3)
    log.start()
    for i in range(200):  # about 60 kB of records: many rotations
        prediction, results = text_answer([f"text number {i}"])
        log.record(f"req-{i}", None, prediction, [f"text number {i}"], results)
    log.close()
    stem = f"payloads-{os.getpid()}"
    assert sorted(p.name for p in log.folder.iterdir()) == [f"{stem}.1.jsonl", f"{stem}.2.jsonl", f"{stem}.jsonl"]
    for path in log.folder.iterdir():
        assert path.stat().st_size <= 4096
        assert path.read_bytes().endswith(b"\n")  # whole lines only
    ids = [int(r["request_id"].split("-")[1]) for r in written(log)]
    # the newest records, in order, with no gap: the oldest file went first
    assert ids == list(range(ids[0], 200)) and ids[0] > 100


def test_a_line_longer_than_the_file_size_gets_a_file_of_its_own(make_log) -> None:
    log = make_log(max_bytes=4096, files=2)
    log.start()
    long_text = "x" * 10_000
    for text in ("before", long_text, "after"):
        prediction, results = text_answer([text])
        log.record(text[:6], None, prediction, [text], results)
    log.close()
    assert [r["request_id"] for r in written(log)] == ["xxxxxx", "after"]
    assert read(log.folder / f"payloads-{os.getpid()}.1.jsonl")[0]["text"] == long_text


def test_a_request_past_the_queue_bound_is_dropped_and_counted_and_close_writes_the_rest(
    make_log, metrics: Metrics
) -> None:
    log = make_log(queue_bytes=100)
    # Not started yet: nothing leaves the queue, so what fits is known exactly.
    first = ["x" * 60]
    second = ["y" * 30, "z" * 30]  # 60 more: past 100
    third = ["w" * 40]  # fits beside the first
    for request_id, texts in (("first", first), ("second", second), ("third", third)):
        prediction, results = text_answer(texts)
        log.record(request_id, None, prediction, texts, results)
    assert sample_value(metrics, "service_payload_log_dropped_total", reason="queue_full") == 2  # its two records
    log.start()
    log.close()
    assert [r["request_id"] for r in read(log.path)] == ["first", "third"]
    assert sample_value(metrics, "service_payload_log_records_total") == 2


def test_close_writes_everything_still_queued(make_log) -> None:
    log = make_log()
    log.start()
    prediction, results = text_answer(["one", "two"])
    for i in range(500):
        log.record(f"req-{i}", None, prediction, ["one", "two"], results)
    log.close()
    assert len(read(log.path)) == 1000


def test_a_failed_write_is_counted_and_the_writer_goes_on(make_log, metrics: Metrics, caplog) -> None:
    log = make_log(max_bytes=4096, files=2)
    log.start()
    # A folder where the rotated file must go: rotation fails with a real OSError.
    blocker = log.folder / f"payloads-{os.getpid()}.1.jsonl"
    blocker.mkdir()
    (blocker / "inside").write_text("keeps the folder non-empty")
    prediction, results = text_answer(["p" * 3000])
    for i in range(3):
        log.record(f"req-{i}", None, prediction, ["p" * 3000], results)
    log.close()
    failed = sample_value(metrics, "service_payload_log_dropped_total", reason="write_error")
    assert failed >= 1
    assert failed + sample_value(metrics, "service_payload_log_records_total") == 3
    assert "could not be written" in caplog.text
    # the writer lived on: a restarted log, with the way cleared, rotates again
    (blocker / "inside").unlink()
    blocker.rmdir()
    log = make_log(max_bytes=4096, files=2)
    log.start()
    for i in range(3):
        log.record(f"again-{i}", None, prediction, ["p" * 3000], results)
    log.close()
    assert [r["request_id"] for r in written(log)][-2:] == ["again-1", "again-2"]


def test_the_log_is_off_unless_a_folder_is_given(metrics: Metrics, tmp_path: Path) -> None:
    assert PayloadLog.from_settings(Settings(), metrics) is None
    assert PayloadLog.from_settings(Settings(payload_log_dir=""), metrics) is None  # an empty variable: off
    log = PayloadLog.from_settings(Settings(payload_log_dir=tmp_path, payload_log_sample=0.5,
                                            payload_log_texts="hash", payload_log_images=True), metrics)
    assert log is not None
    assert (log.folder, log.sample, log.keep_texts, log.keep_images) == (tmp_path, 0.5, False, True)


def test_settings_refuse_a_queue_smaller_than_the_largest_request(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SERVICE_PAYLOAD_LOG_QUEUE_BYTES .* SERVICE_MAX_BODY_BYTES"):
        Settings(payload_log_dir=tmp_path, payload_log_queue_bytes=2048, max_body_bytes=4096)


def test_an_unwritable_folder_stops_the_start_with_the_setting_named(metrics: Metrics, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    log = PayloadLog(tmp_path / "a-file" / "payloads", metrics)
    with pytest.raises(RuntimeError, match="SERVICE_PAYLOAD_LOG_DIR=.*a-file/payloads'.*writable folder"):
        log.start()
