"""Every input format into every output format, on the tiny models (tiny-text v2 is the newest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from service.score import outputs
from tests.service.images import encode, solid
from tests.service.score.conftest import read_rows, write_texts
from tests.tiny_models import expected_image_probabilities, expected_positive

TEXTS = ["good good movie", "bad", "good bad bad", "GOOD", "a good\nlong text, with \"quotes\"\nand lines"]
FORMATS = ("csv", "jsonl", "parquet")


def check_texts(rows: list[dict], texts: list[str], ids: list[object], version: int = 2) -> None:
    assert [row["row"] for row in rows] == list(range(len(texts)))
    assert [row["id"] for row in rows] == ids
    for row, text in zip(rows, texts, strict=True):
        positive = expected_positive(text, version)
        assert row["error"] is None
        assert row["label"] == ("positive" if positive > 0.5 else "negative")
        assert row["probability_positive"] == pytest.approx(positive, abs=1e-6)
        assert row["probability_negative"] == pytest.approx(1 - positive, abs=1e-6)
        assert row["probability"] == max(row["probability_positive"], row["probability_negative"])
        assert (row["model"], row["version"]) == ("tiny-text", version)


@pytest.mark.parametrize("output_format", FORMATS)
@pytest.mark.parametrize("input_format", FORMATS)
def test_every_input_format_into_every_output_format(score: Callable, tmp_path: Path, input_format: str,
                                                     output_format: str) -> None:
    source = write_texts(tmp_path / f"in.{input_format}",
                         [{"id": f"t{i}", "text": text, "other": i} for i, text in enumerate(TEXTS)])
    out = tmp_path / f"out.{output_format}"
    run = score("tiny-text", source, "--output", out, "--id-column", "id", "--batch-size", 2)
    assert run.status == 0, run.stderr
    assert "scored 5 rows (0 with an error) with tiny-text version 2 (newest) on tensorflow in " in run.stderr
    check_texts(read_rows(out), TEXTS, [f"t{i}" for i in range(len(TEXTS))])
    assert not (tmp_path / f"out.{output_format}.partial").exists()  # joined and cleaned up


def test_the_columns_are_in_a_fixed_order(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"id": "a", "text": "good"}])
    assert score("tiny-text", source, "--output", tmp_path / "out.csv", "--id-column", "id").status == 0
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == ("id,row,label,probability,probability_negative,probability_positive,error,model,version")


def test_a_csv_in_a_named_encoding_with_newlines_in_quoted_fields(score: Callable, tmp_path: Path) -> None:
    texts = ["très good\nfilm, vraiment", "mauvais bad\r\nà éviter", "ça va, good"]
    source = write_texts(tmp_path / "in.csv", [{"id": i, "text": t} for i, t in enumerate(texts)], "latin-1")
    assert b"tr\xe8s" in source.read_bytes()  # really latin-1, not UTF-8
    out = tmp_path / "out.jsonl"
    run = score("tiny-text", source, "--output", out, "--encoding", "latin-1", "--id-column", "id")
    assert run.status == 0, run.stderr
    check_texts(read_rows(out), texts, ["0", "1", "2"])  # CSV ids are text


def test_jsonl_ids_keep_their_json_type_and_parquet_ids_their_arrow_type(score: Callable, tmp_path: Path) -> None:
    records = [{"id": 7, "text": "good"}, {"id": 8, "text": "bad"}]
    assert score("tiny-text", write_texts(tmp_path / "in.jsonl", records), "--output", tmp_path / "out.jsonl",
                 "--id-column", "id").status == 0
    assert [row["id"] for row in read_rows(tmp_path / "out.jsonl")] == [7, 8]
    assert score("tiny-text", write_texts(tmp_path / "in.parquet", records), "--output", tmp_path / "out.parquet",
                 "--id-column", "id").status == 0
    assert pq.read_schema(tmp_path / "out.parquet").field("id").type == "int64"
    # JSON ids into CSV or Parquet are written as text (one type per column)
    assert score("tiny-text", tmp_path / "in.jsonl", "--output", tmp_path / "ids.parquet",
                 "--id-column", "id").status == 0
    assert [row["id"] for row in read_rows(tmp_path / "ids.parquet")] == ["7", "8"]


def test_parquet_output_names_the_model_and_version_in_its_metadata(score: Callable, tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.jsonl", [{"text": "good"}])
    assert score("tiny-text", source, "--output", tmp_path / "out.parquet").status == 0
    metadata = pq.read_schema(tmp_path / "out.parquet").metadata
    assert metadata[b"model"] == b"tiny-text" and metadata[b"version"] == b"2"
    assert metadata[b"version_chosen"] == b"newest"
    [row] = read_rows(tmp_path / "out.parquet")
    assert "id" not in row and (row["model"], row["version"]) == ("tiny-text", 2)


def test_formats_can_be_named_when_extensions_do_not_say(score: Callable, tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text('{"text": "good"}\n\n{"text": "bad"}\n')  # a blank line is not a row
    out = tmp_path / "scored.out"
    run = score("tiny-text", source, "--input-format", "jsonl", "--output", out, "--format", "csv")
    assert run.status == 0, run.stderr
    assert [row["label"] for row in read_rows(out.rename(tmp_path / "scored.csv"))] == ["positive", "negative"]


def test_an_image_folder_is_read_recursively_in_sorted_order_with_paths_as_ids(score: Callable,
                                                                               tmp_path: Path) -> None:
    folder = tmp_path / "images"
    files = {"b/blue.png": solid("blue"), "a.jpg": solid("red", fmt="JPEG"), "b/a/green.jpeg": solid("green", (8, 8),
             fmt="JPEG"), "c.PNG": solid("red", (30, 30))}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / ".DS_Store").write_bytes(b"\0\0")  # hidden files are no rows
    for output_format in FORMATS:
        out = tmp_path / f"out.{output_format}"
        run = score("tiny-image", folder, "--output", out, "--batch-size", 3)
        assert run.status == 0, run.stderr
        rows = read_rows(out)
        assert [row["path"] for row in rows] == ["a.jpg", "b/a/green.jpeg", "b/blue.png", "c.PNG"]
        assert [row["label"] for row in rows] == ["red", "green", "blue", "red"]
        assert all(row["error"] is None and row["version"] == 1 for row in rows)
        blue = rows[2]
        expected = expected_image_probabilities((0, 0, 255), 1)
        assert [blue[f"probability_{c}"] for c in ("red", "green", "blue")] == pytest.approx(expected, abs=1e-6)


def test_jsonl_output_is_one_object_per_line_with_every_column(score: Callable, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "x.bmp").write_bytes(encode(Image.new("RGB", (4, 4), (0, 255, 0)), "BMP"))
    assert score("tiny-image", folder, "--output", tmp_path / "out.jsonl").status == 0
    [line] = (tmp_path / "out.jsonl").read_text().splitlines()
    assert list(json.loads(line)) == ["path", "row", "label", "probability", "probability_red", "probability_green",
                                      "probability_blue", "error", "model", "version"]


@pytest.mark.parametrize("output_format", FORMATS)
def test_an_input_with_no_rows_gives_an_output_with_no_rows(score: Callable, tmp_path: Path,
                                                           output_format: str) -> None:
    (tmp_path / "in.csv").write_text("id,text\n")
    out = tmp_path / f"out.{output_format}"
    assert score("tiny-text", tmp_path / "in.csv", "--output", out, "--id-column", "id").status == 0
    assert read_rows(out) == []
    if output_format == "parquet":
        assert pq.read_schema(out).names[:3] == ["id", "row", "label"]


def test_a_parquet_input_of_many_row_groups_is_read_in_order(score: Callable, tmp_path: Path) -> None:
    texts = [f"{'good ' * (i % 3)}text {i}" for i in range(50)]
    import pyarrow as pa

    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet", row_group_size=7)
    out = tmp_path / "out.csv"
    assert score("tiny-text", tmp_path / "in.parquet", "--output", out, "--batch-size", 4,
                 "--part-rows", 12).status == 0
    rows = read_rows(out)
    assert [row["row"] for row in rows] == list(range(50))
    assert [row["probability_positive"] for row in rows] == pytest.approx(
        [expected_positive(text, 2) for text in texts], abs=1e-6)


@pytest.mark.parametrize("name", FORMATS)
def test_a_shard_is_a_part_that_reads_alone(tmp_path: Path, name: str) -> None:
    """What --ray writes per range: a local part, but for CSV's header (a local run joins the parts after one)."""
    columns = ["id", "row", "label", "error"]
    output = outputs.output_format(name, columns, "id", {"model": "m"})

    def rows() -> dict[str, list[Any]]:
        return {"id": ["a", 7], "row": [0, 1], "label": ["x", None], "error": [None, "bad"]}

    output.write_part(tmp_path / f"part.{name}", rows())
    output.write_shard(tmp_path / f"shard.{name}", rows())
    part, shard = (tmp_path / f"part.{name}").read_bytes(), (tmp_path / f"shard.{name}").read_bytes()
    if name == "csv":
        assert shard == b"id,row,label,error\n" + part and part == b"a,0,x,\n7,1,,bad\n"
    else:
        assert shard == part
