"""An input cut into ranges (what `--ray` hands to each actor) reads as the same rows as one pass over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.score.inputs import Range, open_source
from tests.service.score.conftest import write_texts

TEXTS = ["good", "two\nlines, \"quoted\"", "", "naïve café", "bad bad", "x" * 300]


def _rows(chunks) -> list[tuple]:
    return [(chunk.first_row + offset, None if chunk.ids is None else chunk.ids[offset], repr(item))
            for chunk in chunks for offset, item in enumerate(chunk.items)]


# Every text format in every encoding a user may name; Parquet has no encoding of its own (its strings are UTF-8).
FORMATS = [(suffix, encoding) for suffix in (".csv", ".jsonl") for encoding in ("utf-8", "latin-1", "utf-16")]
FORMATS.append((".parquet", "utf-8"))


@pytest.mark.parametrize(("suffix", "encoding"), FORMATS)
@pytest.mark.parametrize("rows_per_range", [1, 7, 64, 1000])
def test_the_ranges_together_are_every_row_once_in_order(tmp_path: Path, suffix: str, encoding: str,
                                                         rows_per_range: int) -> None:
    records = [{"id": f"r{i}", "text": TEXTS[i % len(TEXTS)]} for i in range(150)]
    path = write_texts(tmp_path / f"in{suffix}", records, encoding=encoding)
    if suffix == ".csv":  # a blank line (not a row) and a row with too few fields (a bad row)
        with open(path, "a", encoding=encoding, newline="") as handle:
            handle.write("\r\nr-short\n\nr-last,good\n")
    source = open_source(path, None, "text", "id", encoding)
    whole = _rows(source.chunks(0, 5))
    ranges = source.ranges(rows_per_range)
    assert [part.start for part in ranges] == list(range(0, len(whole), rows_per_range)) or ranges == \
        [Range(0, len(whole))]  # UTF-16 cannot be cut at newline bytes: one range
    assert sum(part.count for part in ranges) == len(whole)
    pieces = [row for part in ranges for row in _rows(open_source(path, None, "text", "id", encoding)
                                                      .read_range(part, 5))]
    assert pieces == whole


def test_an_image_folder_s_ranges_are_its_files_in_order(tmp_path: Path) -> None:
    for name in ["b/2.png", "a/1.png", "c.png", ".hidden.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    source = open_source(tmp_path, None, "text", None, "utf-8")
    ranges = source.ranges(2)
    assert ranges == [Range(0, 2), Range(2, 1)]
    assert [chunk.ids for part in ranges for chunk in source.read_range(part, 1)] == [["a/1.png"], ["b/2.png"],
                                                                                       ["c.png"]]
