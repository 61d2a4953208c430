"""An input in object storage (`s3://bucket/key`, a folder being a prefix) is scored as the same file on a
local path is: the same output bytes, the same refusals, the same resume. A real S3-compatible server
(moto's) on 127.0.0.1 answers pyarrow's S3 filesystem; nothing is mocked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.service.images import solid
from tests.service.score.conftest import Bucket, crash_after, read_rows, write_texts

TEXTS = ["good good movie", "très good\nfilm, vraiment", 'a "quoted", good\r\ntext', "", "mauvais bad", "bad",
         "good bad bad", "ça va, good"]


def local_input(folder: Path, input_format: str) -> tuple[Path, str, list[str]]:
    """An input of every kind the scorer reads, with what makes each one awkward: its path, model and flags."""
    folder.mkdir()
    records = [{"id": i, "text": text, "other": "x"} for i, text in enumerate(TEXTS)]
    if input_format == "csv":  # quoted newlines, in a named encoding
        source = write_texts(folder / "reviews.csv", records, "latin-1")
        assert b"tr\xe8s good\n" in source.read_bytes()
        return source, "tiny-text", ["--encoding", "latin-1", "--id-column", "id"]
    if input_format == "jsonl":
        source = write_texts(folder / "reviews.jsonl", records)
        with open(source, "a") as handle:
            handle.write('\n["not an object"]\n{"id": 99}\n')  # a blank line, and two bad rows
        return source, "tiny-text", ["--id-column", "id"]
    if input_format == "parquet":
        source = folder / "reviews.parquet"
        pq.write_table(pa.Table.from_pylist(records), source, row_group_size=3)
        return source, "tiny-text", ["--id-column", "id"]
    source = folder / "photos"
    for name, data in {"b/blue.png": solid("blue"), "a.jpg": solid("red", fmt="JPEG"), "b/a/green.png":
                       solid("green", (8, 8)), "c.PNG": solid("red", (30, 30)), "broken.png": b"not an image",
                       ".DS_Store": b"\0\0", ".cache/x.png": solid("red")}.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    return source, "tiny-image", []


OUTPUTS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "images": "jsonl"}


@pytest.mark.parametrize("input_format", ["csv", "jsonl", "parquet", "images"])
def test_an_input_in_object_storage_gives_the_output_of_the_same_file_on_a_local_path(
        score: Callable, s3: Bucket, tmp_path: Path, input_format: str) -> None:
    source, model, flags = local_input(tmp_path / "in", input_format)
    uri = s3.upload(source, f"inputs/{source.name}")
    flags += ["--batch-size", "2", "--part-rows", "4"]  # several parts, each chunk a separate read
    extension = OUTPUTS[input_format]
    local = score(model, source, "--output", tmp_path / f"local.{extension}", *flags)
    assert local.status == 0, local.stderr
    remote = score(model, uri, "--output", tmp_path / f"remote.{extension}", *flags)
    assert remote.status == 0, remote.stderr
    assert (tmp_path / f"remote.{extension}").read_bytes() == (tmp_path / f"local.{extension}").read_bytes()
    rows = read_rows(tmp_path / f"remote.{extension}")
    if input_format == "images":  # the prefix's files, recursively, in order, hidden ones left out
        assert [row["path"] for row in rows] == ["a.jpg", "b/a/green.png", "b/blue.png", "broken.png", "c.PNG"]
        assert [row["label"] for row in rows] == ["red", "green", "blue", None, "red"]
        assert rows[3]["error"] == "image 3 (broken.png): the data is not an image in a supported format"
    else:
        assert rows[3]["error"] == "row 3: the text is empty"
        assert [row["label"] is not None for row in rows[:len(TEXTS)]] == [text != "" for text in TEXTS]


def test_the_endpoint_can_be_given_in_the_uri_and_a_file_uri_is_a_local_path(
        score: Callable, s3: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, model, flags = local_input(tmp_path / "in", "csv")
    uri = s3.upload(source, "reviews.csv")
    assert score(model, source, "--output", tmp_path / "local.csv", *flags).status == 0
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    host_and_port = s3.endpoint.removeprefix("http://")
    query = score(model, f"{uri}?endpoint_override={host_and_port}&scheme=http", "--output",
                  tmp_path / "query.csv", *flags)
    assert query.status == 0, query.stderr
    assert (tmp_path / "query.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    file_uri = score(model, source.as_uri(), "--output", tmp_path / "file.csv", *flags)
    assert file_uri.status == 0, file_uri.stderr
    assert (tmp_path / "file.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()


@pytest.mark.parametrize(("arguments", "message"), [
    (["tiny-text", "{s3}/missing.csv"], "input '{s3}/missing.csv' does not exist"),
    (["tiny-image", "{s3}/no-photos/"], "input '{s3}/no-photos/' does not exist"),
    (["tiny-text", "s3://no-such-bucket-here/in.csv"], "input 's3://no-such-bucket-here/in.csv' does not exist"),
    (["tiny-text", "{s3}/in.csv", "--text-column", "body"],
     "'{s3}/in.csv' has no column 'body' (--text-column); its header has: 'id', 'text'"),
    (["tiny-text", "{s3}/in.jsonl", "--id-column", "key"],
     "'{s3}/in.jsonl' has no column 'key' (--id-column); its first 1000 rows have: 'id', 'text'"),
    (["tiny-text", "{s3}/in.parquet", "--text-column", "body"],
     "'{s3}/in.parquet' has no column 'body' (--text-column); its schema has: 'id', 'text'"),
    (["tiny-text", "{s3}/in.parquet", "--text-column", "id"],
     "'{s3}/in.parquet': column 'id' (--text-column) holds int64, not text"),
    (["tiny-text", "{s3}/photos", "--input-format", "csv"],
     "input '{s3}/photos' is a folder; a folder is read as images, not as csv"),
    (["tiny-image", "{s3}/in.csv"], "model 'tiny-image' (image-classification) scores a folder of images, "
                                    "not csv input '{s3}/in.csv'"),
    # credentials in the URI are not repeated in a message
    (["tiny-text", "s3://testing:testing@{bucket}/gone.csv"], "input 's3://{bucket}/gone.csv' does not exist"),
    (["tiny-text", "nosuch://bucket/in.csv"], "cannot open 'nosuch://bucket/in.csv': Unrecognized filesystem type"),
])
def test_a_missing_object_or_column_is_refused_before_any_work(score: Callable, s3: Bucket, tmp_path: Path,
                                                              arguments: list[str], message: str) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("in.csv", "in.jsonl", "in.parquet"):
        s3.upload(write_texts(inputs / name, [{"id": 1, "text": "good"}]), name)
    s3.upload(write_texts(inputs / "photo.csv", [{"id": 1, "text": "good"}]), "photos/photo.csv")
    out = tmp_path / "out"
    out.mkdir()
    arguments = [argument.format(s3=s3.uri, bucket=s3.name) for argument in arguments]
    run = score(*arguments, "--output", out / "out.csv")
    assert run.status == 2, run.stderr
    assert run.stderr.startswith("python -m service.score: error: ")
    assert message.format(s3=s3.uri, bucket=s3.name) in run.stderr
    assert "testing:testing" not in run.stderr
    assert list(out.iterdir()) == []  # nothing written: no output, no partial folder


def test_the_output_is_a_path_not_a_uri(score: Callable, s3: Bucket, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    uri = s3.upload(write_texts(tmp_path / "in.csv", [{"text": "good"}]), "in.csv")
    with pytest.raises(SystemExit) as exit_info:
        score("tiny-text", uri, "--output", f"{s3.uri}/out.csv")
    assert exit_info.value.code == 2
    assert "is a URI: the output is a local or shared path" in capsys.readouterr().err


@pytest.mark.parametrize("input_format", ["csv", "images"])
def test_an_interrupted_job_from_object_storage_resumes_where_it_stopped(
        score: Callable, s3: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_format: str) -> None:
    source, model, flags = local_input(tmp_path / "in", input_format)
    uri = s3.upload(source, f"inputs/{source.name}")
    job = [model, uri, *flags, "--batch-size", "1", "--part-rows", "2"]
    assert score(*job, "--output", tmp_path / "whole.csv").status == 0

    out = tmp_path / "out.csv"
    with crash_after(monkeypatch, commits=1):
        assert score(*job, "--output", out).status == 130
    manifest = json.loads((tmp_path / "out.csv.partial" / "_manifest.json").read_text())
    assert manifest["input"]["path"] == uri  # the URI, as given: the checkpoint is about the input's rows
    resumed = score(*job, "--output", out, "--resume")
    assert resumed.status == 0, resumed.stderr
    assert "continuing from row 2" in resumed.stderr
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_resume_is_refused_when_the_object_has_changed(score: Callable, s3: Bucket, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_texts(tmp_path / "in.csv", [{"text": text} for text in TEXTS])
    uri = s3.upload(source, "in.csv")
    job = ["tiny-text", uri, "--output", tmp_path / "out.csv", "--batch-size", "2", "--part-rows", "2"]
    with crash_after(monkeypatch, commits=1):
        assert score(*job).status == 130
    with open(source, "a") as handle:
        handle.write("one more\n")
    s3.upload(source, "in.csv")
    changed = score(*job, "--resume")
    assert changed.status == 2
    assert "is another job's output: input was {" in changed.stderr
    assert (tmp_path / "out.csv.partial").is_dir()
