"""Bad rows get an error and the job goes on; a job that cannot run is refused before any work (status 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.images import PDF, png_bomb, solid
from tests.service.score.conftest import read_rows, write_texts
from tests.tiny_models import build_mismatched_model


def errors(path: Path) -> list[str | None]:
    return [row["error"] for row in read_rows(path)]


def test_bad_texts_get_an_error_row_and_the_rest_are_scored(score: Callable, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_MAX_TEXT_CHARS", "50")
    lines = [
        '{"id": 0, "text": "good"}',
        '{"id": 1, "text": ""}',
        '{"id": 2, "text": "   \\n "}',
        '{"id": 3, "title": "no text here"}',
        'not json at all',
        '[1, 2]',
        '{"id": 6, "text": 42}',
        '{"id": 7, "text": null}',
        '{"id": 8, "text": "nul \\u0000 inside"}',
        '{"id": 9, "text": "' + "x" * 51 + '"}',
        '{"id": 10, "text": "boom"}',  # the tiny model's call fails on this text: only this row
        '{"id": 11, "text": "bad"}',
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    run = score("tiny-text", source, "--output", out, "--id-column", "id", "--batch-size", 4)
    assert run.status == 0, run.stderr
    assert "scored 12 rows (10 with an error)" in run.stderr
    rows = read_rows(out)
    assert [row["id"] for row in rows] == ["0", "1", "2", "3", None, None, "6", "7", "8", "9", "10", "11"]
    found = errors(out)
    assert found[0] is None and found[11] is None
    assert [rows[i]["label"] for i in (0, 11)] == ["positive", "negative"]
    assert (found[1], found[2]) == ("row 1: the text is empty", "row 2: the text is empty")
    assert found[3] == "row 3: no 'text' field"
    assert found[4].startswith("row 4: not a JSON object (")
    assert found[5] == "row 5: a JSON list, not an object"
    assert found[6] == "row 6: the text is not a string (int)"
    assert found[7] == "row 7: the text is missing (null)"
    assert found[8] == "row 8: the text contains a NUL character"
    assert found[9] == "row 9: the text is 51 characters long; the limit is 50 (SERVICE_MAX_TEXT_CHARS)"
    assert found[10].startswith("row 10: the model call failed (InvalidArgumentError: assertion failed")
    for row in rows[1:11]:
        assert row["label"] is row["probability"] is row["probability_positive"] is None
        assert (row["model"], row["version"]) == ("tiny-text", 2)


def test_a_csv_row_with_too_few_fields_or_bytes_not_in_the_encoding_is_an_error_row(score: Callable,
                                                                                   tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'id,text\n1,good\n2\n3,"caf\xe9 good"\n4,bad\n')  # latin-1 bytes in a UTF-8 file
    out = tmp_path / "out.csv"
    assert score("tiny-text", source, "--output", out, "--id-column", "id").status == 0
    rows = read_rows(out)
    assert [row["id"] for row in rows] == ["1", "2", "3", "4"]
    assert errors(out) == [None, "row 1: no 'text' value (the row has 1 fields, the header 2)",
                           "row 2: the text is not valid in the input's encoding (byte 0xe9 at character 3)", None]


def test_an_undecodable_image_gets_the_handlers_message_and_the_rest_are_scored(score: Callable,
                                                                               tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name, data in {"0.png": solid("red"), "1.png": b"not an image", "2.pdf": PDF, "3.png": b"",
                       "4.png": png_bomb(8000, 8000), "5.png": solid("blue"), "6.png": solid("green")[:60]}.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "out.jsonl"
    run = score("tiny-image", folder, "--output", out, "--batch-size", 2)
    assert run.status == 0, run.stderr
    found = errors(out)
    assert found[0] is None and found[5] is None
    assert found[1] == "image 1 (1.png): the data is not an image in a supported format"
    assert found[2] == "image 2 (2.pdf): the data is not an image in a supported format"
    assert found[3] == "image 3 (3.png): the image is empty (0 bytes)"
    assert found[4].startswith("image 4 (4.png): the image declares 8000x8000 pixels; the limit is")
    assert found[6].startswith("image 6 (6.png): the PNG image is truncated or corrupt")
    assert [row["label"] for row in read_rows(out)] == ["red", None, None, None, None, "blue", None]


def test_a_chunk_with_no_good_row_makes_no_model_call(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": ""}, {"text": ""}, {"text": "good"}])
    assert score("tiny-text", source, "--output", tmp_path / "out.csv", "--batch-size", 2).status == 0
    assert errors(tmp_path / "out.csv") == ["row 0: the text is empty", "row 1: the text is empty", None]


@pytest.mark.parametrize(("arguments", "message"), [
    (["tiny-text", "{tmp}/missing.csv"], "input '{tmp}/missing.csv' does not exist"),
    (["tiny-text", "{tmp}/in.csv", "--text-column", "body"],
     "'{tmp}/in.csv' has no column 'body' (--text-column); its header has: 'id', 'text'"),
    (["tiny-text", "{tmp}/in.csv", "--id-column", "key"],
     "'{tmp}/in.csv' has no column 'key' (--id-column); its header has: 'id', 'text'"),
    (["tiny-text", "{tmp}/in.jsonl", "--text-column", "body"],
     "'{tmp}/in.jsonl' has no column 'body' (--text-column); its first 1000 rows have: 'id', 'text'"),
    (["tiny-text", "{tmp}/in.parquet", "--text-column", "id"],
     "'{tmp}/in.parquet': column 'id' (--text-column) holds int64, not text"),
    (["tiny-text", "{tmp}/in.txt"], "cannot tell the format of '{tmp}/in.txt' from its extension; name it with "
                                    "--input-format (csv, jsonl, parquet, images)"),
    (["tiny-text", "{tmp}/in.csv", "--output", "{tmp}/out.xlsx"],
     "cannot tell the output format of '{tmp}/out.xlsx' from its extension"),
    (["tiny-text", "{tmp}/in.csv", "--encoding", "klingon"], "unknown encoding 'klingon'"),
    (["tiny-text", "{tmp}/in.csv", "--output", "{tmp}/exists.csv"], "output '{tmp}/exists.csv' already exists"),
    (["tiny-text", "{tmp}/in.csv", "--output", "{tmp}/no/such/folder/out.csv"],
     "the output's folder '{tmp}/no/such/folder' does not exist"),
    (["nope", "{tmp}/in.csv"], "no model 'nope' in"),
    (["tiny-text", "{tmp}/in.csv", "--version", "9"], "version 9 of 'tiny-text' does not exist (--version); "
                                                     "its versions: 1, 2"),
    (["tiny-image", "{tmp}/in.csv"], "model 'tiny-image' (image-classification) scores a folder of images, "
                                     "not csv input"),
    (["tiny-text", "{tmp}/images"], "model 'tiny-text' (text-classification) scores a CSV, JSON Lines or "
                                    "Parquet file of texts, not images input"),
    (["tiny-text", "{tmp}/in.csv", "--id-column", "text", "--text-column", "text", "--output", "{tmp}/o.csv"], None),
])
def test_a_job_that_cannot_run_is_refused_before_any_work(score: Callable, tmp_path: Path, arguments: list[str],
                                                          message: str | None) -> None:
    records = [{"id": 1, "text": "good"}]
    for name in ("in.csv", "in.jsonl", "in.parquet"):
        write_texts(tmp_path / name, records)
    (tmp_path / "in.txt").write_text("text\ngood\n")
    (tmp_path / "exists.csv").write_text("precious\n")
    (tmp_path / "images").mkdir()
    before = sorted(tmp_path.iterdir())
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    if "--output" not in arguments:
        arguments += ["--output", str(tmp_path / "out.csv")]
    run = score(*arguments)
    if message is None:  # the id and the text may be one column: not refused
        assert run.status == 0, run.stderr
        return
    assert run.status == 2, run.stderr
    assert run.stderr.startswith("python -m service.score: error: ")
    assert message.format(tmp=tmp_path) in run.stderr
    assert sorted(tmp_path.iterdir()) == before  # nothing written: no output, no partial folder
    assert (tmp_path / "exists.csv").read_text() == "precious\n"


def test_an_id_column_named_like_an_output_column_is_refused(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"label": "x", "text": "good"}])
    run = score("tiny-text", source, "--id-column", "label", "--output", tmp_path / "out.csv")
    assert run.status == 2
    assert "--id-column 'label' has the name of an output column" in run.stderr


def test_a_bad_option_value_is_a_usage_error(score: Callable, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        score("tiny-text", tmp_path / "in.csv", "--output", tmp_path / "out.csv", "--batch-size", "0")
    assert exit_info.value.code == 2


def test_a_model_that_does_not_match_its_card_fails_with_status_1_naming_its_folder(
        score: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_mismatched_model(tmp_path / "artifacts" / "broken" / "1", "input dtype")
    monkeypatch.setenv("SERVICE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    (tmp_path / "images").mkdir()
    run = score("broken", tmp_path / "images", "--output", tmp_path / "out.csv")
    assert run.status == 1
    assert f"{tmp_path / 'artifacts' / 'broken' / '1'}: signature needs one input 'images'" in run.stderr
    assert not (tmp_path / "out.csv.partial").exists() and not (tmp_path / "out.csv").exists()
