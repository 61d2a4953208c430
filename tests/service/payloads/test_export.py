"""`python -m service.payloads export`: a log -> the CSV training.sentiment reads, or its image folders."""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.handlers.image import EncodedImage
from service.core.metrics import Metrics
from service.payloads.__main__ import main
from service.payloads.export import CSV_COLUMNS, ExportError, export
from service.payloads.log import PayloadLog
from service.settings import Settings
from tests.service.images import solid
from tests.service.payloads.test_log import image_answer, text_answer
from training.csv_data import Columns, read_labelled_file


def write_log(folder: Path, requests: list[list[str]], **options) -> PayloadLog:
    """A log of `requests` (each a list of texts) by the real writer, closed."""
    log = PayloadLog(folder, Metrics(), **options)
    log.start()
    for number, texts in enumerate(requests):
        prediction, results = text_answer(texts)
        log.record(f"req-{number}", None, prediction, texts, results)
    log.close()
    return log


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def fill_labels(path: Path) -> None:
    """What a person does with the export: every empty label filled (here, agreeing with the model)."""
    rows = rows_of(path)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "label": row["suggested_label"]} for row in rows)


HOSTILE = [
    'a "quoted", comma-laden text',
    "line one\nline two\r\nline three\rend",
    "tabs\tand\\backslashes\\n that are not newlines",
    "unicode: café, Straße, 日本語, emoji 🎬👍, RTL \u05e9\u05dc\u05d5\u05dd, combining e\u0301",
    "separators that splitlines() breaks on: \u2028 \u2029 \x85 \x0b \x0c \x1c",
    '=HYPERLINK("http://example.com") a formula a spreadsheet might run',
    "   leading and trailing spaces   ",
    "good " * 4000,  # 20,000 characters: the service's longest text
]


def test_hostile_texts_sent_to_the_api_survive_the_log_and_the_csv(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = tmp_path / "payloads"
    with TestClient(create_app(make_settings(payload_log_dir=folder))) as client:
        response = client.post("/sentiment", json={"texts": HOSTILE})
        assert response.status_code == 200, response.text
        assert client.post("/sentiment", json={"text": "a NUL \x00 inside"}).status_code == 422  # never logged
    out = tmp_path / "to-label.csv"
    summary = export([folder], "tiny-text", out)
    assert summary.exported == len(HOSTILE)
    rows = rows_of(out)
    assert [row["text"] for row in rows] == HOSTILE
    assert all(row["label"] == "" for row in rows)
    assert [row["suggested_label"] for row in rows] == [r["label"] for r in response.json()["results"]]


def test_what_the_api_refuses_survives_the_writer_too_and_training_reads_it_back(tmp_path: Path) -> None:
    texts = [*HOSTILE, "a NUL \x00 inside", "x" * 100_000]
    for index, text in enumerate(texts):  # two classes, enough rows of each for the training splits
        texts[index] = text + (" pos" if index % 2 else " neg")
    log = write_log(tmp_path / "payloads", [texts[:5], [*texts[5:], "y" * 200_000]])
    out = tmp_path / "to-label.csv"
    summary = export([log.folder], "reviews", out)
    assert (summary.exported, summary.too_long) == (len(texts), 1)  # past the CSV reader's field limit
    assert [row["text"] for row in rows_of(out)] == texts
    fill_labels(out)
    data = read_labelled_file(out, Columns("text", "label"), test_fraction=0.2, validation_fraction=0.2)
    # training strips each text; nothing else changes on the way
    assert sorted(data.train.texts + data.test.texts) == sorted(text.strip() for text in texts)


def test_unlabelled_rows_are_refused_by_training_with_the_row_named(tmp_path: Path) -> None:
    log = write_log(tmp_path / "payloads", [["one text", "another text, longer than the first one by far"]])
    out = tmp_path / "to-label.csv"
    export([log.folder], "reviews", out)
    from training.text_data import DatasetError

    with pytest.raises(DatasetError, match=r"row 1 \(line 2\): empty label in column 'label'"):
        read_labelled_file(out, Columns("text", "label"))


def test_repeats_blanks_hashes_other_models_and_cut_lines_are_counted_not_exported(tmp_path: Path) -> None:
    folder = tmp_path / "payloads"
    write_log(folder, [["kept", "kept", "  "], ["kept", "also kept"]])
    write_log(folder / "hashed", [["secret"]], texts="hash")
    [hashed] = (folder / "hashed").glob("*.jsonl")
    other = json.loads(hashed.read_text())
    images = tmp_path / "images.jsonl"
    images.write_text(json.dumps({**other, "model": "colours", "task": "image-classification"}) + "\n"
                      + '{"time": "2026-12-06T03:21:55.1')  # a line cut by a process that stopped mid-write
    out = tmp_path / "to-label.csv"
    summary = export([folder, hashed, images], "reviews", out)
    assert [row["text"] for row in rows_of(out)] == ["kept", "also kept"]
    assert (summary.exported, summary.duplicates, summary.blank, summary.hash_only, summary.not_json) == (2, 2, 1, 1, 1)
    assert summary.other_models == {"colours": 1}
    report = summary.report()
    assert "skipped 1: texts logged as their sha256 only (SERVICE_PAYLOAD_LOG_TEXTS=hash)" in report
    assert f"python -m training.sentiment --data {out} --text-column text --label-column label" in report


def test_the_command_reports_refuses_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path / "payloads", [["a text"]])
    out = tmp_path / "to-label.csv"
    assert main(["export", str(log.folder), "--model", "reviews", "--out", str(out)]) == 0
    assert "1 texts of reviews exported to" in capsys.readouterr().out
    assert main(["export", str(log.folder), "--model", "reviews", "--out", str(out)]) == 2
    assert "exists; give a new --out" in capsys.readouterr().err
    assert main(["export", str(log.folder), "--model", "nobody", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no records of model 'nobody' in 1 log file(s); models found: reviews" in capsys.readouterr().err
    write_log(tmp_path / "hashed", [["a text"]], texts="hash")
    assert main(["export", str(tmp_path / "hashed"), "--model", "reviews", "--out", str(tmp_path / "y.csv")]) == 1
    assert not (tmp_path / "y.csv").exists()
    with pytest.raises(ExportError, match="no such file or folder"):
        export([tmp_path / "absent"], "reviews", tmp_path / "z.csv")


def write_image_log(folder: Path, images: list[bytes], keep_bytes: bool = True) -> PayloadLog:
    log = PayloadLog(folder, Metrics(), images=keep_bytes)
    log.start()
    for number, data in enumerate(images):
        prediction, results = image_answer(1)
        log.record(f"req-{number}", None, prediction, [EncodedImage(data, f"upload-{number}.png")], results)
    log.close()
    return log


def test_images_go_to_the_folder_of_their_suggested_label_split_and_marked_as_suggestions(tmp_path: Path) -> None:
    pictures = [solid("red", size=(4 + i, 5)) for i in range(10)]
    log = write_image_log(tmp_path / "payloads", [*pictures, pictures[0]])  # the first one twice
    write_image_log(tmp_path / "payloads" / "no-bytes", pictures[:2], keep_bytes=False)
    out = tmp_path / "to-review"
    summary = export([log.folder, tmp_path / "payloads" / "no-bytes"], "colours", out, test_fraction=0.2)
    assert (summary.exported, summary.duplicates, summary.without_bytes) == (10, 1, 2)
    # image_answer suggests "green" for every image
    train, test = sorted((out / "train" / "green").iterdir()), sorted((out / "test" / "green").iterdir())
    assert (len(train), len(test)) == (8, 2)
    assert {path.read_bytes() for path in train + test} == set(pictures)
    assert all(path.suffix == ".png" for path in train + test)
    suggested = json.loads((out / "suggested.json").read_text())
    assert "suggestions" in suggested["note"]
    assert sorted(entry["path"] for entry in suggested["images"]) == sorted(
        path.relative_to(out).as_posix() for path in train + test)
    assert {entry["filename"] for entry in suggested["images"]} == {f"upload-{i}.png" for i in range(10)}
    assert "MODEL SUGGESTED" in (out / "README.txt").read_text()
    # the same log splits the same way every time
    again = tmp_path / "again"
    export([log.folder], "colours", again, test_fraction=0.2)
    assert sorted(p.name for p in (again / "test" / "green").iterdir()) == [p.name for p in test]


def test_an_image_log_without_bytes_exports_nothing_and_says_why(tmp_path: Path) -> None:
    log = write_image_log(tmp_path / "payloads", [solid("blue")], keep_bytes=False)
    summary = export([log.folder], "colours", tmp_path / "out")
    assert summary.exported == 0 and not (tmp_path / "out").exists()
    assert "images logged without their bytes (SERVICE_PAYLOAD_LOG_IMAGES=false)" in summary.report()


def test_a_label_that_would_leave_the_folder_is_refused(tmp_path: Path) -> None:
    log = write_image_log(tmp_path / "payloads", [solid("blue")])
    [path] = log.folder.glob("*.jsonl")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "prediction": "../outside",
                                "probabilities": {"../outside": 1.0}}) + "\n")
    with pytest.raises(ExportError, match="cannot be a folder name"):
        export([log.folder], "colours", tmp_path / "out")
    assert not (tmp_path / "outside").exists()


def test_records_of_an_image_model_keep_images_of_any_accepted_format(tmp_path: Path) -> None:
    formats = {"JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
    log = write_image_log(tmp_path / "payloads", [solid("green", fmt=fmt) for fmt in formats] + [b"not an image"])
    summary = export([log.folder], "colours", tmp_path / "out")
    assert (summary.exported, summary.not_images) == (4, 1)
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.parent.name == "green"]
    assert sorted(p.suffix for p in written) == sorted(formats.values())
    assert base64.b64encode(written[0].read_bytes())  # whole files, not base64 text
