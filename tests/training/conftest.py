"""Fixtures for the training tests: tiny datasets and GloVe files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.tiny_text import (
    write_glove,
    write_imdb_folder,
    write_imdb_tarball,
    write_tweets_csv,
)


@pytest.fixture
def glove_txt(tmp_path: Path) -> Path:
    return write_glove(tmp_path / "glove.tiny.8d.txt", 8)


@pytest.fixture
def make_glove(tmp_path: Path):
    """Writes a GloVe text file of any dimension: make_glove("glove.6B.4d.txt", 4)."""
    return lambda name, dim: write_glove(tmp_path / name, dim)


@pytest.fixture
def imdb_folder(tmp_path: Path) -> Path:
    return write_imdb_folder(tmp_path)


@pytest.fixture
def imdb_tarball(imdb_folder: Path, tmp_path: Path) -> Path:
    return write_imdb_tarball(imdb_folder, tmp_path)


@pytest.fixture
def tweets_csv(tmp_path: Path) -> Path:
    return write_tweets_csv(tmp_path)
