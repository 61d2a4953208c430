"""What every training job shares: reproducibility, provenance, export, evaluation, plots.

A job reads top to bottom (data, model, train, evaluate, export); the steps that are the
same for images and text live here so both jobs write artifacts the same way. The artifact
contract itself (card, layout, publishing, loading) is the `contract` package's.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from contract.savedmodel import OUTPUT_NAME, SIGNATURE_KEY, SavedModel

REPO_ROOT = Path(__file__).resolve().parent.parent


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow so that a run can be repeated."""
    keras.utils.set_random_seed(seed)


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """`write(temporary_path)`, then rename it to `path`: a crash or a full disk mid-write
    leaves the previous file whole (a checkpoint written in place would be lost with the epoch)."""
    tmp = path.with_name(path.stem + ".tmp" + "".join(path.suffixes))
    write(str(tmp))
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str:
    """The commit the code was run from, marked '-dirty' when the tree had changes."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def command_line(module: str) -> str:
    """The exact command that was run, in a form a user can paste."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def export_saved_model(
    model: keras.Model, version_dir: Path, input_spec: tf.TensorSpec, lookups: Sequence[keras.Layer] = ()
) -> None:
    """Write `model` as a SavedModel whose `serving_default` maps the input to probabilities.

    The endpoint saves the variables it reads; tracking the whole model as well would save each
    of them twice. Only `lookups`, the layers holding lookup tables (text vocabularies), need
    tracking by hand.
    """
    archive = keras.export.ExportArchive()
    for layer in lookups:
        archive.track(layer)
    archive.add_endpoint(
        name=SIGNATURE_KEY,
        fn=lambda inputs: {OUTPUT_NAME: model(inputs, training=False)},
        input_signature=[input_spec],
    )
    archive.write_out(str(version_dir), verbose=False)


def classification_figures(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix (rows: truth)."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    classes = list(range(len(labels)))
    precision, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "support": int(s)}
            for label, p, r, s in zip(labels, precision, recall, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }


def predict_in_batches(model: SavedModel, inputs: Any, batch_size: int = 256) -> np.ndarray:
    """Run the reloaded SavedModel over a whole split, one batch at a time."""
    outputs = [model.predict(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs)


def plot_history(history_csv: Path, png: Path, metrics: Sequence[str] = ("loss", "accuracy")) -> None:
    """Training and validation curves from the per-epoch CSV."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + metric in rows[0]:
                ax.plot(epochs, [float(r[prefix + metric]) for r in rows], style, label=prefix + metric)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix)
    size = max(4, len(labels) * 0.7)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), count in np.ndenumerate(values):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if count > values.max() / 2 else "black", fontsize=8)
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
