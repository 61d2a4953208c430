"""Occlusion: the variants of an input with one part left out, and the weights their answers give.

The one definition the service explains answers with (service.core.explaining) and training measures
faithfulness with (training/faithfulness.py), so that the figures in a card are the served method's:

- a text's part is one word the model saw (contract.tokens), or, for a text of more than `most`
  words, a span of consecutive words; it is left out by blanking its characters with spaces;
- an image's part is a cell of a `grid` x `grid` grid evenly covering the image as the model sees
  it; it is left out by filling the cell with mid-grey (`GREY`, every channel).

A part's weight is the predicted label's probability on the input minus its probability on the
variant without that part: positive pushes toward the label, negative away from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from contract.tokens import Token

GREY = 128
# The service's defaults (SERVICE_EXPLAIN_MAX_WORDS, SERVICE_EXPLAIN_GRID), which a card's faithfulness
# figures are measured with.
MAX_WORDS = 48
GRID = 8


def parts(count: int, most: int) -> list[tuple[int, int]]:
    """`count` words as at most `most` runs [first, end) of consecutive words, as even in length as can be."""
    if count <= most:
        return [(i, i + 1) for i in range(count)]
    bounds = [round(i * count / most) for i in range(most + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def blanked(text: str, tokens: Sequence[Token]) -> str:
    """`text` with the characters of `tokens` (in text order) replaced by spaces: the model no longer sees them."""
    pieces = []
    done = 0
    for token in tokens:
        start = max(token.start, done)
        pieces.append(text[done:start])
        pieces.append(" " * max(0, token.end - start))
        done = max(done, token.end)
    pieces.append(text[done:])
    return "".join(pieces)


def text_variants(text: str, tokens: Sequence[Token], runs: Sequence[tuple[int, int]]) -> list[str]:
    """One variant of `text` per run of `tokens`, that run's words blanked."""
    return [blanked(text, tokens[first:end]) for first, end in runs]


def grid_for(height: int, width: int, most: int = GRID) -> int:
    """Cells per side on an image the model sees at height x width: `most`, or fewer on a smaller image
    (a cell is at least a pixel)."""
    return min(most, height, width)


def cells(height: int, width: int, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid's row and column boundaries, `grid + 1` of each, evenly over the image."""
    return (np.linspace(0, height, grid + 1).round().astype(int),
            np.linspace(0, width, grid + 1).round().astype(int))


def filled(image: np.ndarray, chosen: Sequence[int], grid: int) -> np.ndarray:
    """A copy of `image` ([H, W, 3] uint8) with the cells `chosen` (row-major indices) filled with GREY."""
    rows_at, columns_at = cells(image.shape[0], image.shape[1], grid)
    out = image.copy()
    for cell in chosen:
        i, j = divmod(int(cell), grid)
        out[rows_at[i] : rows_at[i + 1], columns_at[j] : columns_at[j + 1]] = GREY
    return out


def image_variants(image: np.ndarray, grid: int) -> np.ndarray:
    """[grid * grid, H, W, 3]: one variant per cell, in row-major order, that cell filled with GREY."""
    rows_at, columns_at = cells(image.shape[0], image.shape[1], grid)
    variants = np.repeat(image[np.newaxis], grid * grid, axis=0)
    for i in range(grid):
        for j in range(grid):
            variants[i * grid + j, rows_at[i] : rows_at[i + 1], columns_at[j] : columns_at[j + 1]] = GREY
    return variants


def weights(output: np.ndarray, variants: np.ndarray) -> tuple[int, np.ndarray]:
    """(the predicted label's index, each variant's weight) from the input's and its variants' probabilities."""
    top = int(output.argmax())
    return top, output[top] - variants[:, top]
