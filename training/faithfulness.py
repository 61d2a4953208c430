"""How faithful a version's explanations are: does leaving out what an explanation weighs most lower the
predicted label's probability more than leaving out as much at random? (issue 27, section 6)

`explanations_section` measures it on held-out inputs and returns the card's `explanations` section;
`python -m training.republish` records it in a new version's card.

The weights are the served ones: contract.occlusion's parts, variants and weights, with the service's
defaults (MAX_WORDS, GRID), on the words the card's `input.tokenizer` says the graph sees. For each
input, L is the label the model predicts and p its probability; a deletion's drop is p minus L's
probability on the input with some parts left out, the way the service leaves a part out:

- texts: the k highest-weighted words (words in one span share its weight; ties go in text order)
  against k words drawn at random, their characters blanked with spaces (`occlusion.blanked`), for
  k = 3 and 5; a text with fewer than k words is skipped for that k, and counted;
- images: the most salient quarter of the grid's cells against a random quarter, filled with GREY
  (`occlusion.filled`).

The bar: the mean drop of the top-weighted parts at least twice the mean drop of the random ones.
Model calls are batched, BATCH_SIZE rows at a time, CHUNK inputs' variants together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract import occlusion
from contract.kinds import ImageInput, TextInput
from contract.savedmodel import SavedModel
from contract.tokens import Tokenizer
from training.common import predict_in_batches
from training.verification_sample import choose_rows

DEFAULT_COUNT = 500
DEFAULT_SEED = 0
TEXT_KS = (3, 5)
BAR = 2.0
BATCH_SIZE = 256
# Inputs whose variants are built and sent together: enough for full batches, few enough that an
# image model's 65 variants per image stay a few MB.
CHUNK = 64
RUNTIME_NOTE = (
    "measured with the SavedModel as saved (TensorFlow, float32); the service computes explanations on "
    "the version's runtime (bf16 where docs/runtimes.md's checks allow it, float32 otherwise), in the "
    "same batches as its answers, so served weights may differ slightly from the ones measured here"
)


@dataclass(frozen=True)
class Deletion:
    """Mean drops over the inputs measured: the `parts` top-weighted parts left out, and as many random ones."""

    parts: int  # words (texts) or grid cells (images) left out
    count: int  # inputs measured
    skipped: int  # inputs with fewer than `parts` words
    mean_drop_top: float
    mean_drop_random: float

    @property
    def ratio(self) -> float | None:
        """None when random deletions do not lower the probability on average (no ratio to speak of)."""
        return self.mean_drop_top / self.mean_drop_random if self.mean_drop_random > 0 else None

    @property
    def meets_bar(self) -> bool:
        return self.count > 0 and self.mean_drop_top > 0 and self.mean_drop_top >= BAR * self.mean_drop_random

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "parts": self.parts,
            "count": self.count,
            "skipped": self.skipped,
            "mean_drop_top": round(self.mean_drop_top, 5),
            "mean_drop_random": round(self.mean_drop_random, 5),
            "ratio": None if ratio is None else round(ratio, 2),
            "meets_bar": self.meets_bar,
        }


def explanations_section(
    model: SavedModel,
    inputs: np.ndarray | Sequence[str],
    *,
    split: str,
    split_description: str,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """The card's `explanations` section for `model`, its faithfulness measured on `count` of `inputs` (the
    whole held-out split, `split` its short name and `split_description` what it is, in words)."""
    started = time.perf_counter()
    rows = choose_rows(len(inputs), count, seed)
    chosen = inputs[rows] if isinstance(inputs, np.ndarray) else [inputs[i] for i in rows]
    spec = model.card.input
    if isinstance(spec, TextInput):
        deletions = text_deletions(model, chosen, seed=seed)  # type: ignore[arg-type]
        settings: dict[str, Any] = {"max_words": occlusion.MAX_WORDS}
        test = (
            "for each text, L is the predicted label and p its probability; the k words with the highest "
            "occlusion weights (words in one span share its weight; ties in text order) are deleted, their "
            "characters replaced with spaces, and separately k words drawn at random; a drop is p minus L's "
            "probability after the deletion; texts with fewer than k words are skipped for that k"
        )
    else:
        grid = image_grid(model)
        deletions = [image_deletions(model, np.asarray(chosen), seed=seed)]
        settings = {"grid": grid, "fill": occlusion.GREY}
        test = (
            f"for each image, L is the predicted label and p its probability; the {grid * grid // 4} cells of "
            f"the {grid} x {grid} grid with the highest occlusion weights (ties in row-major order) are filled "
            f"with grey ({occlusion.GREY}), and separately as many cells drawn at random; a drop is p minus "
            "L's probability after the filling"
        )
    for deletion in deletions:
        ratio = "none" if deletion.ratio is None else f"{deletion.ratio:.2f}"
        print(
            f"faithfulness, {deletion.parts} parts: top {deletion.mean_drop_top:.4f}, random "
            f"{deletion.mean_drop_random:.4f}, ratio {ratio} on {deletion.count} inputs ({deletion.skipped} skipped)",
            flush=True,
        )
    return {
        "method": "occlusion",
        **settings,
        "faithfulness": {
            "split": split,
            "count": len(rows),
            "seed": seed,
            "inputs": f"{len(rows):,} of the {len(inputs):,} inputs of the {split_description}, chosen by "
            f"numpy default_rng({seed}) without replacement and kept in split order; the random parts come "
            f"from a second numpy default_rng({seed}), input by input",
            "test": test,
            "bar": f"the mean drop of the top-weighted parts is at least {BAR:g} times the random parts'",
            "deletions": [deletion.to_json() for deletion in deletions],
            "meets_bar": all(deletion.meets_bar for deletion in deletions),
            "seconds": round(time.perf_counter() - started, 1),
            "runtime": RUNTIME_NOTE,
        },
    }


def text_deletions(
    model: SavedModel, texts: Sequence[str], ks: Sequence[int] = TEXT_KS, seed: int = DEFAULT_SEED
) -> list[Deletion]:
    """One Deletion per k: the k top-weighted words of each text blanked, against k random ones."""
    spec = model.card.input
    assert isinstance(spec, TextInput)
    if spec.tokenizer is None:
        raise ValueError(f"{model.path}: the card declares no input.tokenizer, so the words its graph sees are unknown")
    tokenizer = Tokenizer(spec.tokenizer, spec.max_tokens)
    rng = np.random.default_rng(seed)
    top: dict[int, list[float]] = {k: [] for k in ks}
    random: dict[int, list[float]] = {k: [] for k in ks}
    skipped = dict.fromkeys(ks, 0)
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        words = [tokenizer.tokens(text) for text in chunk]
        runs = [occlusion.parts(len(tokens), occlusion.MAX_WORDS) for tokens in words]
        rows: list[str] = []
        for text, tokens, text_runs in zip(chunk, words, runs, strict=True):
            rows += [text, *occlusion.text_variants(text, tokens, text_runs)]
        outputs = predict_in_batches(model, rows, BATCH_SIZE)
        deleted: list[str] = []
        asked: list[tuple[int, int, float]] = []  # (k, L, p) per pair of deleted rows
        at = 0
        for text, tokens, text_runs in zip(chunk, words, runs, strict=True):
            label, weights = occlusion.weights(outputs[at], outputs[at + 1 : at + 1 + len(text_runs)])
            p = float(outputs[at, label])
            at += 1 + len(text_runs)
            word_weights = np.repeat(weights, [end - first for first, end in text_runs])
            for k in ks:
                if len(tokens) < k:
                    skipped[k] += 1
                    continue
                highest = np.argsort(-word_weights, kind="stable")[:k]
                drawn = rng.choice(len(tokens), size=k, replace=False)
                for chosen in (highest, drawn):
                    deleted.append(occlusion.blanked(text, [tokens[i] for i in sorted(chosen.tolist())]))
                asked.append((k, label, p))
        if deleted:
            after = predict_in_batches(model, deleted, BATCH_SIZE)
            for i, (k, label, p) in enumerate(asked):
                top[k].append(p - float(after[2 * i, label]))
                random[k].append(p - float(after[2 * i + 1, label]))
    return [_deletion(k, top[k], random[k], skipped[k]) for k in ks]


def image_grid(model: SavedModel) -> int:
    """The service's grid for this model, at its default (contract.occlusion.grid_for)."""
    spec = model.card.input
    assert isinstance(spec, ImageInput)
    return occlusion.grid_for(spec.height, spec.width)


def image_deletions(model: SavedModel, images: np.ndarray, seed: int = DEFAULT_SEED) -> Deletion:
    """The most salient quarter of each image's grid cells filled with grey, against a random quarter."""
    grid = image_grid(model)
    cells = grid * grid // 4
    rng = np.random.default_rng(seed)
    top: list[float] = []
    random: list[float] = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        rows = np.concatenate(
            [np.concatenate([image[np.newaxis], occlusion.image_variants(image, grid)]) for image in chunk]
        )
        outputs = predict_in_batches(model, rows, BATCH_SIZE).reshape(len(chunk), 1 + grid * grid, -1)
        deleted = []
        asked = []  # (L, p) per pair of filled images
        for image, output in zip(chunk, outputs, strict=True):
            label, weights = occlusion.weights(output[0], output[1:])
            highest = np.argsort(-weights, kind="stable")[:cells]
            drawn = rng.choice(grid * grid, size=cells, replace=False)
            deleted += [occlusion.filled(image, highest.tolist(), grid), occlusion.filled(image, drawn.tolist(), grid)]
            asked.append((label, float(output[0, label])))
        after = predict_in_batches(model, np.stack(deleted), BATCH_SIZE)
        for i, (label, p) in enumerate(asked):
            top.append(p - float(after[2 * i, label]))
            random.append(p - float(after[2 * i + 1, label]))
    return _deletion(cells, top, random, 0)


def _deletion(parts: int, top: list[float], random: list[float], skipped: int) -> Deletion:
    return Deletion(
        parts, len(top), skipped, float(np.mean(top)) if top else 0.0, float(np.mean(random)) if random else 0.0
    )
