"""A version's verification sample, as every job that publishes a version writes it.

Which inputs: up to `count` of the held-out split the card's figures are measured on (the test
split), chosen by a generator with a fixed seed and kept in split order, so that a training
run and a later `python -m training.republish` of the same data pick the same rows. The
reference outputs are the staged SavedModel's own, computed in batches through the contract's
loader before the version is renamed into place. The file format and the checks a reader
makes are contract.verification's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contract.savedmodel import SavedModel
from contract.verification import write_sample
from training import common

DEFAULT_COUNT = 2000
SELECTION_SEED = 0
NEVER_CALIBRATE = (
    "It is the held-out sample a faster runtime is checked on: never use it to calibrate or tune one."
)


def choose_rows(total: int, count: int, seed: int = SELECTION_SEED) -> np.ndarray:
    """`count` of the row positions 0..total-1 (all of them when there are fewer), in split order."""
    if count < 1:
        raise ValueError(f"a verification sample needs at least 1 input, asked for {count}")
    if count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))


def write_verification_sample(
    version_dir: Path,
    model: SavedModel,
    inputs: np.ndarray | Sequence[str],
    labels: np.ndarray,
    *,
    count: int,
    split: str,
    split_description: str,
    held_out: str,
) -> dict[str, Any]:
    """Choose the rows, predict them with `model` (the staged version, float32), write the sample
    into `version_dir`; returns the card's `verification` section.

    `inputs` and `labels` are the whole held-out split; `split` its short name ("test"),
    `split_description` what it is in words, `held_out` why the model never learned from it.
    """
    _check_float32_reference()
    rows = choose_rows(len(labels), count)
    chosen = inputs[rows] if isinstance(inputs, np.ndarray) else [inputs[i] for i in rows]
    reference = common.predict_in_batches(model, chosen).astype(np.float32, copy=False)
    source = (
        f"{len(rows):,} of the {len(labels):,} inputs of the {split_description}, "
        f"chosen by numpy default_rng({SELECTION_SEED}) without replacement and kept in split order; "
        f"held out: {held_out} {NEVER_CALIBRATE}"
    )
    section = write_sample(version_dir, chosen, np.asarray(labels)[rows], reference, split=split, source=source)
    section["split_size"] = len(labels)
    section["selection_seed"] = SELECTION_SEED
    print(
        f"verification sample: {len(rows)} {split} inputs, reference accuracy {section['reference_accuracy']:.4f}, "
        f"{(Path(version_dir) / section['file']).stat().st_size / 1e6:.2f} MB",
        flush=True,
    )
    return section


def _check_float32_reference() -> None:
    """The reference must be float32: refuse while TensorFlow's bf16 graph rewrite is on in this process."""
    import tensorflow as tf

    if tf.config.optimizer.get_experimental_options().get("auto_mixed_precision_onednn_bfloat16"):
        raise RuntimeError(
            "TensorFlow's auto_mixed_precision_onednn_bfloat16 rewrite is on in this process: the "
            "verification sample's reference outputs must come from the float32 model"
        )
