"""Fit a classifier on token-id sequences: length-bucketed batches, a checkpoint every epoch,
`--resume`, progress lines and a per-epoch CSV.

The embedding can stay frozen for the first `frozen_epochs` (so that random upper layers do
not wreck the GloVe vectors), then is fine-tuned at a lower learning rate. A network without
a frozen phase needs no layer named "embedding" (the n-gram member has none).
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.common import atomic_write

LAST, BEST, STATE, HISTORY = "last.keras", "best.weights.h5", "state.json", "history.csv"


@dataclass(frozen=True)
class FitPlan:
    epochs: int
    frozen_epochs: int  # first epochs with the embedding frozen; 0 = trainable throughout
    batch_size: int
    learning_rate: float
    fine_tune_learning_rate: float


def bucketed_batches(
    ids: tf.RaggedTensor,
    labels: np.ndarray,
    batch_size: int,
    max_tokens: int,
    shuffle: bool,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of texts of similar length, each padded only to its own longest text; with
    `weights`, each element also carries its sample weight in the loss."""
    columns: tuple[Any, ...] = (ids, labels.astype(np.int32))
    if weights is not None:
        columns += (weights.astype(np.float32),)
    data = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle:
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    data = data.map(_at_least_one_token)
    boundaries = sorted({int(8 * 1.35**k) for k in range(40) if 8 * 1.35**k < max_tokens})
    data = data.bucket_by_sequence_length(_length, boundaries, [batch_size] * (len(boundaries) + 1))
    return data.prefetch(tf.data.AUTOTUNE)


@tf.autograph.experimental.do_not_convert
def _at_least_one_token(ids, *rest):
    return tf.pad(ids, [[0, tf.maximum(0, 1 - tf.shape(ids)[0])]]), *rest


@tf.autograph.experimental.do_not_convert
def _length(ids, *rest):
    return tf.shape(ids)[0]


class ProgressLog(keras.callbacks.Callback):
    """One line every `every` batches and per epoch, flushed, for `nohup ... > log` runs."""

    def __init__(self, name: str, every: int = 50):
        super().__init__()
        self.name, self.every = name, every

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            self._print(f"batch {batch + 1}", logs)

    def on_epoch_end(self, epoch, logs=None):
        self._print("done", logs)

    def _print(self, where: str, logs: dict[str, Any] | None) -> None:
        scalars = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float | np.number)}
        figures = " ".join(f"{k}={v:.4f}" for k, v in scalars.items())
        elapsed = time.perf_counter() - self.started
        print(f"[{self.name}] epoch {self.epoch + 1} {where} {elapsed:.0f}s {figures}", flush=True)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (with optimizer state) each epoch, the best weights by
    validation accuracy, and `state.json` last, so a crash never leaves a half-written state."""

    def __init__(self, run_dir: Path, state: dict):
        super().__init__()
        self.run_dir, self.state = run_dir, state

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        atomic_write(self.run_dir / LAST, lambda tmp: self.model.save(tmp))
        val = logs.get("val_accuracy")
        val = None if val is None else float(val)
        # without validation data (a final fit on train + validation) the last epoch is kept
        if val is None or val > self.state["best_val_accuracy"]:
            atomic_write(self.run_dir / BEST, lambda tmp: self.model.save_weights(tmp))
            self.state.update(best_val_accuracy=val, best_epoch=epoch + 1)
        self.state["epoch"] = epoch + 1
        self.state["seconds"] += time.perf_counter() - self.started
        atomic_write(self.run_dir / STATE, lambda tmp: Path(tmp).write_text(json.dumps(self.state, indent=2)))


def read_state(run_dir: Path) -> dict | None:
    path = run_dir / STATE
    return json.loads(path.read_text()) if path.is_file() else None


def fit_classifier(
    make: Callable[[], keras.Model],
    run_dir: Path,
    train: tf.data.Dataset,
    validation: tf.data.Dataset | None,
    plan: FitPlan,
    resume: bool,
    name: str,
    command: str,
) -> tuple[keras.Model, dict]:
    """Train (or continue training) to `plan.epochs`; returns the best-epoch model and its state
    (the last epoch's when `validation` is None)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state = read_state(run_dir)
    if state is not None and not resume:
        raise SystemExit(
            f"{run_dir} already holds a run (epoch {state['epoch']}): pass --resume "
            "to continue it, or choose another --run-dir"
        )
    if state is None or state["epoch"] == 0:
        state = {
            "epoch": 0,
            "best_epoch": 0,
            "best_val_accuracy": -1.0,
            "seconds": 0.0,
            "plan": asdict(plan),
            "commands": [],
        }
        model = make()
        if plan.frozen_epochs:
            model.get_layer("embedding").trainable = False
        _compile(model, plan.learning_rate)
    else:
        print(f"[{name}] resuming from {run_dir / LAST} after epoch {state['epoch']}", flush=True)
        model = keras.models.load_model(run_dir / LAST)
    state["plan"] = asdict(plan)  # a resumed run may train to more epochs than first planned
    state["commands"].append(command)
    _truncate_history(run_dir / HISTORY, state["epoch"])
    callbacks = [
        ProgressLog(name),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=True),
        EpochCheckpoint(run_dir, state),
    ]
    # bucketed batches have no known count, so Keras warns at each epoch's end; it is expected
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    phases = [(plan.frozen_epochs, None), (plan.epochs, plan.fine_tune_learning_rate)]
    for end, fine_tune_rate in phases:
        if state["epoch"] >= end:
            continue
        if fine_tune_rate is not None and plan.frozen_epochs:
            embedding = model.get_layer("embedding")
            if not embedding.trainable:
                print(f"[{name}] unfreezing the embedding, learning rate {fine_tune_rate}", flush=True)
                embedding.trainable = True
                _compile(model, fine_tune_rate)
        model.fit(
            train,
            validation_data=validation,
            initial_epoch=state["epoch"],
            epochs=end,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
    atomic_write(run_dir / STATE, lambda tmp: Path(tmp).write_text(json.dumps(state, indent=2)))
    if validation is None:
        _drop_empty_columns(run_dir / HISTORY)  # Keras writes val_* columns of "NA"
    if state["best_epoch"] == 0:
        raise SystemExit(f"{run_dir}: no epoch was completed (epochs={plan.epochs})")
    with warnings.catch_warnings():
        # The best epoch may be a frozen one, saved with an optimizer that had no slots for the embedding:
        # Keras then skips the optimizer's variables, which are not needed after training anyway.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(run_dir / BEST)
    best = state["best_val_accuracy"]
    print(
        f"[{name}] best epoch {state['best_epoch']} val_accuracy "
        + ("none (no validation data: the last epoch)" if best is None else f"{best:.4f}"),
        flush=True,
    )
    return model, state


def _compile(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def _truncate_history(path: Path, epochs_done: int) -> None:
    """Drop CSV rows of epochs whose checkpoint was not saved (a run killed mid-epoch)."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if rows:
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs_done]
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


def _drop_empty_columns(path: Path) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i in range(len(rows[0])) if any(r[i] != "NA" for r in rows[1:])]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([[r[i] for i in keep] for r in rows])
