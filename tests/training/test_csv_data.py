"""Reading a user's own labelled file: CSV quoting, JSON Lines, the split, and every error it names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from training.csv_data import Columns, read_labelled_file
from training.text_data import DatasetError

COLUMNS = Columns("text", "label")


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = ("id", "text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)  # quotes fields with commas, quotes or newlines, as spreadsheets do
        writer.writerow(header)
        writer.writerows(rows)
    return path


def three_classes(per_class: int = 10) -> list[list[str]]:
    """Rows of three classes, every third text with a comma, a quote and a newline inside."""
    rows = []
    for i in range(per_class):
        for label, word in (("pos", "great"), ("neg", "awful"), ("mixed", "fine")):
            text = f'{word}, "really"\nsecond line {i}' if i % 3 == 0 else f"{word} item {i}"
            rows.append([f"r{len(rows) + 1}", text, label])
    return rows


def test_quoted_commas_quotes_and_newlines_survive_and_the_split_is_stratified(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", three_classes())
    data = read_labelled_file(path, COLUMNS, test_fraction=0.2, seed=1)

    assert data.labels == ["mixed", "neg", "pos"]  # sorted: a stable class order
    everything = data.train + data.test
    assert len(everything) == 30
    assert 'great, "really"\nsecond line 0' in everything.texts
    # 20% of each class in the test split, and row numbers (1 = the first data row) as ids
    assert np.bincount(data.test.labels).tolist() == [2, 2, 2]
    assert sorted(everything.ids, key=int) == [str(i) for i in range(1, 31)]
    assert not set(data.train.ids) & set(data.test.ids)
    row = int(data.test.ids[0])
    assert data.test.texts[0] == three_classes()[row - 1][1].strip()
    assert "seed 1" in data.test_split and "data row numbers" in data.test_split
    # the same seed gives the same split; another seed another one
    assert read_labelled_file(path, COLUMNS, seed=1).test.ids == data.test.ids
    assert read_labelled_file(path, COLUMNS, seed=2).test.ids != data.test.ids


def test_an_id_column_names_the_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", three_classes())
    data = read_labelled_file(path, Columns("text", "label", "id"))
    assert all(row_id.startswith("r") for row_id in data.test.ids) and "column 'id'" in data.test_split


def test_json_lines_with_numeric_labels_blank_lines_and_unicode(tmp_path: Path) -> None:
    lines = []
    for i in range(12):
        lines.append(json.dumps({"body": f"texte numéro {i}\u2028suite", "stars": i % 2 + 4, "key": i}))
        if i == 5:
            lines.append("   ")
    path = tmp_path / "avis.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    data = read_labelled_file(path, Columns("body", "stars"), test_fraction=0.25, validation_fraction=0.25)

    assert data.labels == ["4", "5"]
    assert len(data.train) + len(data.test) == 12 and len(data.test) == 4
    assert "texte numéro 0\u2028suite" in data.train.texts + data.test.texts
    ids = data.train.ids + data.test.ids  # line numbers: the blank line 7 is skipped
    assert sorted(ids, key=int) == [str(n) for n in range(1, 14) if n != 7]
    assert "line numbers" in data.test_split


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "excel.csv", three_classes(), header=("text", "label", "id"))
    rows = three_classes()
    with open(path, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([[text, label] for _, text, label in rows])
    assert len(read_labelled_file(path, COLUMNS).labels) == 3


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([["1", "good", "pos"]], ("id", "body", "label"), r"no column 'text' in the header row \(its columns: \['id'"),
        ([[str(i), f"t{i}", "pos"] for i in range(9)], ("id", "text", "label"), r"one class only \('pos', 9 rows\)"),
        (
            [[str(i), f"t{i}", "pos"] for i in range(9)] + [["9", "x", "rare"], ["10", "y", "rare"]],
            ("id", "text", "label"),
            r"class 'rare' in column 'label' has 2 row\(s\); the splits need at least 3",
        ),
        ([], ("id", "text", "label"), "no data rows after the header"),
    ],
)
def test_errors_name_the_file_and_what_is_wrong(tmp_path: Path, rows, header, message) -> None:
    path = write_csv(tmp_path / "mine.csv", rows, header)
    with pytest.raises(DatasetError, match=message) as error:
        read_labelled_file(path, COLUMNS)
    assert str(error.value).startswith(str(path))


def test_an_empty_text_is_named_by_row_and_line(tmp_path: Path) -> None:
    rows = three_classes()
    rows[4][1] = "   "  # data row 5; rows 1 to 3 span two lines each, so it starts on line 9
    path = write_csv(tmp_path / "mine.csv", rows)
    with pytest.raises(DatasetError, match=r"mine.csv: row 5 \(line 9\): empty text in column 'text'"):
        read_labelled_file(path, COLUMNS)
    rows[4][1], rows[6][2] = "fine", ""
    with pytest.raises(DatasetError, match=r"row 7 \(line 11\): empty label"):
        read_labelled_file(write_csv(tmp_path / "mine.csv", rows), COLUMNS)


def test_bytes_that_are_not_utf8_are_named_by_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "latin1.csv", three_classes())
    raw = path.read_bytes().replace(b"awful item 1", "caf\u00e9 item 1".encode("latin-1"))
    path.write_bytes(raw)
    # data row 5 ("awful item 1") starts on line 9
    with pytest.raises(DatasetError, match=r"latin1.csv: row 5 \(line 9\), byte \d+: bytes that are not UTF-8"):
        read_labelled_file(path, COLUMNS)


def test_an_empty_file_and_a_short_row(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"\n  \n")
    with pytest.raises(DatasetError, match="empty.csv: the file is empty"):
        read_labelled_file(empty, COLUMNS)
    short = tmp_path / "short.csv"
    short.write_text("text,label\ngood,pos\nno label here\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"row 2 \(line 3\): no value in column 'label'"):
        read_labelled_file(short, COLUMNS)


def test_json_lines_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "good", "label": "pos"}\n{"text": "bad"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="bad.jsonl: line 2: no key 'label'"):
        read_labelled_file(path, COLUMNS)
    path.write_text('{"text": "good", "label": "pos"}\n{"text": "bad", label: 1}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2: not JSON"):
        read_labelled_file(path, COLUMNS)
    path.write_text('{"text": 5, "label": "pos"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1: the text in 'text' must be a string"):
        read_labelled_file(path, COLUMNS)


def test_duplicate_ids_name_both_rows(tmp_path: Path) -> None:
    rows = three_classes()
    rows[9][0] = rows[2][0]
    with pytest.raises(DatasetError, match=r"row 10 \(line \d+\): id 'r3' in column 'id' is also the id of row 3"):
        read_labelled_file(write_csv(tmp_path / "d.csv", rows), Columns("text", "label", "id"))


def test_classes_must_also_fill_the_folds_and_the_validation_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "small.csv", three_classes(per_class=4))
    read_labelled_file(path, COLUMNS, validation_fraction=0.3)  # 9 training rows, 3 for validation
    with pytest.raises(DatasetError, match=r"validation split of 1 .* each of the 3 classes"):
        read_labelled_file(path, COLUMNS, validation_fraction=0.1)
    with pytest.raises(DatasetError, match="has 4 row.*at least 6: .* 5 cross-validation folds"):
        read_labelled_file(path, COLUMNS, validation_fraction=0.3, folds=5)
