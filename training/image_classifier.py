"""Train the image classifier and write it as a versioned artifact.

    python -m training.image_classifier --data /work/shared/datasets/cifar10-jpeg.zip \\
        --out artifacts/cifar10-cnn
    python -m training.image_classifier --benchmark artifacts/cifar10-cnn/1

Reads top to bottom: data (decoded once, cached), validation carved from training,
model, training with per-epoch checkpoints (`--resume` continues), export, then the
reloaded artifact is evaluated on the test split and its card and plots are written.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from contract import kinds
from contract.card import write_card
from contract.publish import StagedVersion, staged_version
from contract.savedmodel import LoadedModel, load_model
from contract.speed import machine_description, measure_throughput
from training import common
from training.image_data import (
    ImageDataset,
    augment_batch,
    dataset_sha256,
    load_dataset,
    split_validation,
)
from training.image_model import DEFAULT_WIDTHS, make_model, with_flip_averaging

MODULE = "training.image_classifier"
CACHE_DIR = common.REPO_ROOT / ".cache" / "image-data"
# Options that may change between an interrupted run and its --resume.
NOT_RUN_SETTINGS = ("resume", "command", "work_dir", "version", "out", "benchmark", "benchmark_seconds", "flip_tta")
TIME_BUDGET = "at most 3 hours of training on the 2-core machine named under 'machine'"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="Train a residual CNN image classifier and export it as "
        "<out>/<version>/ (SavedModel + model.json card + plots).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="cifar-10-python.tar.gz, a cifar-10-batches-py/ folder, "
        "or an image-folder tree <root>/{train,test}/<class>/<image> (folder or .zip; "
        "<root> may be one folder down). Required unless --benchmark.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/cifar10-cnn"),
        help="model folder; its name is the model's name, the version goes below it",
    )
    parser.add_argument("--version", type=int, help="version number to write; if omitted, one above the highest")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=[32, 32],
        help="height and width every image is resized to; the model's input size",
    )
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=512, help="training batch size")
    parser.add_argument(
        "--lr",
        type=float,
        default=0.4,
        help="peak learning rate of the one-cycle schedule (SGD, Nesterov momentum 0.9)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.2,
        help="fraction of training spent raising the learning rate linearly from 0 to --lr; "
        "it then falls linearly to 0",
    )
    parser.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    parser.add_argument("--label-smoothing", type=float, default=0.2, help="label smoothing of the loss")
    parser.add_argument(
        "--widths",
        type=int,
        nargs=4,
        default=list(DEFAULT_WIDTHS),
        metavar=("STEM", "S1", "S2", "S3"),
        help="channels of the stem and the three stages",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="fraction of each training class held out for validation (fixed by --seed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initial weights and augmentation")
    parser.add_argument(
        "--precision",
        choices=["float32", "mixed_bfloat16"],
        default="float32",
        help="training compute dtype (the export is always float32)",
    )
    parser.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA")
    parser.add_argument(
        "--flip-tta",
        action="store_true",
        help="export a model that averages predictions on each image and its mirror "
        "(about half the inference throughput)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="checkpoints and the per-epoch metrics CSV; if omitted, runs/<model name>",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --work-dir (weights, optimizer state, epoch)",
    )
    parser.add_argument(
        "--benchmark",
        type=Path,
        metavar="VERSION_DIR",
        help="only measure in-process inference images/s of an exported artifact and exit",
    )
    parser.add_argument("--benchmark-seconds", type=float, default=5.0, help="seconds per measured batch size")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The exact command, for the card: sys.argv when run from a shell, else the argv given.
    args.command = common.command_line(MODULE) if argv is None else shlex.join(["python", "-m", MODULE, *argv])
    if args.benchmark is None and args.data is None:
        parser.error("--data is required (or --benchmark VERSION_DIR)")
    return args


# --- data ---------------------------------------------------------------------------------------


def read_data(path: Path, height: int, width: int) -> tuple[ImageDataset, str]:
    """The dataset and its sha256; decoded arrays are cached under .cache/ keyed by both."""
    sha256 = dataset_sha256(path)
    cache = CACHE_DIR / f"{sha256[:16]}-{height}x{width}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            meta = json.loads(str(saved["meta"]))
            data = ImageDataset(
                meta["name"],
                meta["labels"],
                saved["train_images"],
                saved["train_labels"],
                saved["test_images"],
                saved["test_labels"],
                meta["skipped"],
            )
        print(f"data: {path} (decoded copy from {cache})")
    else:
        data = load_dataset(path, height, width)
        cache.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"name": data.name, "labels": data.labels, "skipped": data.skipped})
        np.savez(
            cache,
            meta=meta,
            train_images=data.train_images,
            train_labels=data.train_labels,
            test_images=data.test_images,
            test_labels=data.test_labels,
        )
    print(
        f"data: {len(data.labels)} classes, {len(data.train_labels)} train / "
        f"{len(data.test_labels)} test images, {len(data.skipped)} unreadable file(s) skipped"
    )
    for line in data.skipped:
        print(f"  skipped {line}")
    return data, sha256


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, train: bool) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if train:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if train:
        dataset = dataset.map(lambda x, y: (augment_batch(x), y), num_parallel_calls=1)
    return dataset.prefetch(2)


# --- training -----------------------------------------------------------------------------------


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup` of the steps, then linear decay to 0."""

    def __init__(self, peak: float, total_steps: int, warmup: float):
        self.peak, self.total = peak, float(total_steps)
        self.warmup_steps = max(1.0, warmup * total_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rise = step / self.warmup_steps
        fall = (self.total - step) / max(1.0, self.total - self.warmup_steps)
        return self.peak * keras.ops.clip(keras.ops.minimum(rise, fall), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "total_steps": int(self.total),
            "warmup": self.warmup_steps / self.total,
        }


class EpochClock(keras.callbacks.Callback):
    """Adds the epoch's wall seconds and last learning rate to the logs (and so to the CSV)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.started
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def prepare_work_dir(work_dir: Path, settings: dict[str, Any], resume: bool) -> None:
    """Refuse to mix runs: a fresh run needs an empty work dir, a resumed one the same settings."""
    settings_file = work_dir / "settings.json"
    if resume:
        if not settings_file.is_file():
            raise SystemExit(f"--resume: {work_dir} holds no earlier run (no settings.json)")
        before = json.loads(settings_file.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise SystemExit(f"--resume: settings differ from the run in {work_dir} (was, now): {changed}")
        return
    if settings_file.exists() or (work_dir / "backup").exists():
        raise SystemExit(
            f"{work_dir} holds an earlier run: pass --resume to continue it, "
            "or delete the folder (or choose another --work-dir) to start over"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings, indent=2) + "\n")


def train(args: argparse.Namespace, data: ImageDataset, work_dir: Path) -> tuple[keras.Model, dict[str, Any]]:
    height, width = args.image_size
    train_x, train_y, val_x, val_y = split_validation(
        data.train_images, data.train_labels, args.val_fraction, args.seed
    )
    mean, std = train_x.mean(axis=(0, 1, 2)), train_x.std(axis=(0, 1, 2))
    print(f"split: {len(train_y)} train / {len(val_y)} validation images (seed {args.seed})")

    keras.mixed_precision.set_global_policy(args.precision)
    model = make_model(len(data.labels), height, width, mean, std, args.widths)
    steps = math.ceil(len(train_y) / args.batch_size)
    optimizer = keras.optimizers.SGD(
        OneCycle(args.lr, steps * args.epochs, args.warmup),
        momentum=0.9,
        nesterov=True,
        weight_decay=args.weight_decay,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
        jit_compile=args.jit_compile,
    )
    print(f"model: {model.count_params():,} parameters, widths {args.widths}, {args.precision}")

    history_csv = work_dir / "history.csv"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work_dir / "backup"), delete_checkpoint=False),
        EpochClock(),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
    ]
    one_hot = len(data.labels)
    model.fit(
        batches(train_x, keras.utils.to_categorical(train_y, one_hot), args.batch_size, args.seed, True),
        validation_data=batches(val_x, keras.utils.to_categorical(val_y, one_hot), 1024, args.seed, False),
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )

    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = {
        "seconds": round(sum(float(r["seconds"]) for r in rows), 1),
        "epochs_run": len(rows),
        "train_images": len(train_y),
        "validation_images": len(val_y),
        "validation": {k: float(rows[-1][k]) for k in ("val_accuracy", "val_loss")} if rows else {},
        "history_csv": history_csv,
    }
    keras.mixed_precision.set_global_policy("float32")
    return float32_copy(model, data, args, mean, std), summary


def float32_copy(
    model: keras.Model,
    data: ImageDataset,
    args: argparse.Namespace,
    mean: np.ndarray,
    std: np.ndarray,
) -> keras.Model:
    """The trained network rebuilt in float32, so the export is float32 whatever trained it."""
    exported = make_model(len(data.labels), *args.image_size, mean, std, args.widths)
    exported.set_weights(model.get_weights())
    return with_flip_averaging(exported) if args.flip_tta else exported


# --- export, evaluation, card -------------------------------------------------------------------


def throughput(model: LoadedModel, seconds: float) -> dict[str, float]:
    """In-process images/s of the reloaded SavedModel at batch 1 and 64 (random pixels)."""
    shape = (model.card.input.height, model.card.input.width, 3)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    return {
        f"batch_{n}_images_per_second": round(
            measure_throughput(model.predict, [rng.integers(0, 256, (n, *shape), dtype=np.uint8)], seconds), 1
        )
        for n in (1, 64)
    }


def export_and_evaluate(
    args: argparse.Namespace,
    model: keras.Model,
    data: ImageDataset,
    sha256: str,
    summary: dict[str, Any],
) -> Path:
    with staged_version(args.out, args.version) as staged:
        _write_version(staged, args, model, data, sha256, summary)
    print(f"wrote {staged.target}")
    return staged.target


def _write_version(
    staged: StagedVersion,
    args: argparse.Namespace,
    model: keras.Model,
    data: ImageDataset,
    sha256: str,
    summary: dict[str, Any],
) -> None:
    """Write the SavedModel, evaluate the reloaded copy, then the card and plots, into the staging folder."""
    height, width = args.image_size
    version, version_dir = staged.version, staged.path
    common.export_saved_model(model, version_dir, tf.TensorSpec([None, height, width, 3], tf.uint8, name="images"))
    card: dict[str, Any] = {
        "name": args.out.name,
        "version": version,
        "task": kinds.IMAGE.task,
        "labels": data.labels,
        "input": {"height": height, "width": width},
        "evaluation": {"split": "test (provisional: not yet evaluated)"},
        "dataset": {"name": data.name, "sha256": sha256},
        "git_commit": common.git_commit(),
        "training": {
            "command": args.command,
            "seconds": summary["seconds"],
            "machine": machine_description(),
        },
    }
    write_card(version_dir, card)  # a first card, so the artifact can be loaded to evaluate it

    probabilities = common.predict_in_batches(staged.load(), data.test_images)
    figures = common.classification_figures(data.test_labels, probabilities.argmax(axis=1), data.labels)
    figures["per_class_accuracy"] = {k: v["recall"] for k, v in figures["per_class"].items()}
    card["evaluation"] = {
        "split": "test",
        "images": len(data.test_labels),
        "measured_on": "the reloaded SavedModel",
        **figures,
        "validation": summary["validation"],
    }
    card["dataset"].update(
        {
            "path": str(args.data),
            "train_images": summary["train_images"],
            "validation_images": summary["validation_images"],
            "test_images": len(data.test_labels),
            "validation": f"{args.val_fraction:.0%} of each training class, seed {args.seed}",
            "skipped_unreadable_files": len(data.skipped),
            "skipped_examples": data.skipped[:20],
        }
    )
    card["training"].update(
        {
            "time_budget": TIME_BUDGET,
            "epochs": summary["epochs_run"],
            "batch_size": args.batch_size,
            "optimizer": f"SGD Nesterov 0.9, one-cycle peak lr {args.lr} "
            f"(warm-up {args.warmup:.0%}), weight decay {args.weight_decay}",
            "label_smoothing": args.label_smoothing,
            "augmentation": "4-px reflect-padded random crops, horizontal flips",
            "precision": args.precision,
            "seed": args.seed,
        }
    )
    card["model"] = {
        "architecture": f"ResNet-9-style CNN, widths {args.widths}, "
        f"{'flip-averaged' if args.flip_tta else 'single view'}",
        "parameters": int(model.count_params()),
        "export_dtype": "float32",
    }
    card["inference"] = {
        **throughput(staged.load(), args.benchmark_seconds),
        "how": "in-process LoadedModel.predict, random uint8 images, after a warm-up call; "
        f"python -m {MODULE} --benchmark {staged.target}",
        "machine": machine_description(),
    }
    write_card(version_dir, card)
    common.plot_history(summary["history_csv"], version_dir / "training_curves.png")
    common.plot_confusion(figures["confusion_matrix"], data.labels, version_dir / "confusion_matrix.png")
    print(f"test accuracy {figures['accuracy']:.4f}; inference {card['inference']}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.benchmark is not None:
        print(json.dumps(throughput(load_model(args.benchmark), args.benchmark_seconds)))
        return
    common.set_seed(args.seed)
    data, sha256 = read_data(args.data, *args.image_size)
    work_dir = args.work_dir or common.REPO_ROOT / "runs" / args.out.name
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    for key in NOT_RUN_SETTINGS:
        settings.pop(key)
    settings["dataset_sha256"] = sha256
    prepare_work_dir(work_dir, settings, args.resume)
    model, summary = train(args, data, work_dir)
    export_and_evaluate(args, model, data, sha256, summary)


if __name__ == "__main__":
    main()
