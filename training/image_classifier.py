"""Train the image classifier and write it as a versioned artifact.

    python -m training.image_classifier --data /work/shared/datasets/cifar10-jpeg.zip \\
        --out artifacts/cifar10-cnn
    python -m training.image_classifier --export-only --work-dir runs/cifar10-cnn --out artifacts/cifar10-cnn
    python -m training.image_classifier --benchmark artifacts/cifar10-cnn/1

Reads top to bottom: data (decoded once, cached), validation carved from training,
model, training with per-epoch checkpoints (`--resume` continues), export, then the
reloaded artifact is evaluated on the test split and its card, plots and verification sample
(test images with the reloaded model's outputs; training/verification_sample.py) are written.

Exporting is also a step of its own: `--export-only` rebuilds the network from a finished
run's last checkpoint in its work dir and exports it as a training run would. Both decide
test-time flips and fit the calibration temperature on the validation split (never the test
split), then measure the test split once, on the reloaded SavedModel.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from contract import kinds
from contract.card import write_card
from contract.publish import StagedVersion, staged_version
from contract.savedmodel import SavedModel, load_model
from contract.speed import machine_description, measure_throughput
from training import common, faithfulness, monitoring
from training.calibration import calibration_card, fit_temperature, plot_reliability, with_temperature
from training.image_data import (
    ImageDataset,
    augment_batch,
    dataset_sha256,
    load_dataset,
    split_validation,
)
from training.image_model import DEFAULT_WIDTHS, make_model, with_flip_averaging
from training.verification_sample import DEFAULT_COUNT, write_verification_sample

MODULE = "training.image_classifier"
CACHE_DIR = common.REPO_ROOT / ".cache" / "image-data"
# Options that may change between an interrupted run and its --resume (or its --export-only):
# they are not compared with the run's settings.json.
NOT_RUN_SETTINGS = (
    "resume",
    "command",
    "work_dir",
    "version",
    "out",
    "benchmark",
    "benchmark_seconds",
    "flip_tta",
    "export_only",
    "verification_count",
)
COMMANDS_FILE = "commands.txt"  # every command that trained in a work dir, one per line
RELIABILITY_PNG = "reliability.png"
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
        "--cutout",
        type=int,
        default=0,
        metavar="PIXELS",
        help="also paint one PIXELS x PIXELS square of each training image in its mean colour (0: off)",
    )
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
        choices=["auto", "on", "off"],
        nargs="?",
        const="on",
        default="auto",
        help="test-time flips: export a model that averages its predictions on each image and its "
        "mirror (about half the inference throughput). auto: on only if that scores higher on the "
        "validation split; a bare --flip-tta means on",
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
        "--export-only",
        action="store_true",
        help="train nothing: rebuild the network from the finished run in --work-dir (its last "
        "checkpoint and settings.json), then export, calibrate and evaluate it into --out. Run "
        "settings come from settings.json; any given on the command line must match it",
    )
    parser.add_argument(
        "--verification-count",
        type=int,
        default=DEFAULT_COUNT,
        metavar="N",
        help="test images in the version's verification sample (all of them if the test split is smaller): "
        "inputs with the exported model's outputs, on which a faster runtime is checked",
    )
    parser.add_argument(
        "--benchmark",
        type=Path,
        metavar="VERSION_DIR",
        help="only measure in-process inference images/s of an exported artifact and exit",
    )
    parser.add_argument(
        "--benchmark-seconds",
        type=float,
        default=5.0,
        help="seconds per measured batch size (the card's figures, --benchmark, and the untrained "
        "network's speed printed before training)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The exact command, for the card: sys.argv when run from a shell, else the argv given.
    args.command = common.command_line(MODULE) if argv is None else shlex.join(["python", "-m", MODULE, *argv])
    if args.export_only:
        if args.work_dir is None:
            parser.error("--export-only needs --work-dir, the folder of the finished run")
        if args.resume:
            parser.error("--export-only trains nothing: it cannot --resume")
        _take_run_settings(args, _explicit_options(parser, argv))
    if args.benchmark is None and args.data is None:
        parser.error("--data is required (or --benchmark VERSION_DIR)")
    if args.verification_count < 1:
        parser.error("--verification-count must be at least 1: every new version carries a sample")
    return args


def _explicit_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> dict[str, Any]:
    """The options given on the command line, without the defaults filled in."""
    bare = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            bare._add_action(copy.copy(action)).default = argparse.SUPPRESS
    return vars(bare.parse_args(argv))


def _take_run_settings(args: argparse.Namespace, explicit: dict[str, Any]) -> None:
    """--export-only: the run's settings.json fills in the run settings; one given on the command
    line that differs is an error, as it would describe another network. --data may point to
    where the dataset is now: its sha256 is checked against the run's when it is read."""
    settings_file = args.work_dir / "settings.json"
    if not settings_file.is_file():
        raise SystemExit(f"--export-only: {args.work_dir} holds no run (no settings.json)")
    settings = json.loads(settings_file.read_text())
    given = {k: str(v) if isinstance(v, Path) else v for k, v in explicit.items()}
    differ = {
        k: (settings[k], v) for k, v in given.items() if k in settings and k != "data" and settings[k] != v
    }
    if differ:
        raise SystemExit(f"--export-only: settings differ from the run in {args.work_dir} (run, given): {differ}")
    for key, value in settings.items():
        if key == "data":
            args.data = args.data if "data" in explicit else Path(value)
        elif key != "dataset_sha256":
            setattr(args, key, value)
    args.run_sha256 = settings["dataset_sha256"]


# --- data ---------------------------------------------------------------------------------------


def read_data(path: Path, height: int, width: int) -> tuple[ImageDataset, str]:
    """The dataset and its sha256; decoded arrays are cached under .cache/ keyed by both."""
    sha256 = dataset_sha256(path)
    # The suffix changes whenever decoding does, so an older cache is decoded again rather than read:
    # v2 kept test_sizes, v3 converts as the service does (contract.pixels).
    cache = CACHE_DIR / f"{sha256[:16]}-{height}x{width}-v3.npz"
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
                saved.get("test_sizes"),
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
            **({} if data.test_sizes is None else {"test_sizes": data.test_sizes}),  # type: ignore[arg-type]
        )
    print(
        f"data: {len(data.labels)} classes, {len(data.train_labels)} train / "
        f"{len(data.test_labels)} test images, {len(data.skipped)} unreadable file(s) skipped"
    )
    for line in data.skipped:
        print(f"  skipped {line}")
    return data, sha256


def batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, train: bool, cutout: int = 0
) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if train:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if train:
        dataset = dataset.map(lambda x, y: (augment_batch(x, cutout=cutout), y), num_parallel_calls=1)
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


CHECKPOINT_DIR, CHECKPOINT_STATE = "checkpoint", "state.json"


class EpochCheckpoint(keras.callbacks.Callback):
    """Each epoch's weights (optimizer state included) in a file of its own, then `state.json`
    naming it, each written whole before it replaces anything (common.atomic_write); the
    previous epoch's file is removed only then. A crash or a full disk at any point leaves a
    state that names a complete checkpoint. Keras's BackupAndRestore overwrites its one file in
    place: a full disk during that write once cost a run 26 epochs."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(exist_ok=True)
        before = read_checkpoint(self.folder)
        weights = f"epoch-{epoch + 1:03d}.weights.h5"
        common.atomic_write(self.folder / weights, lambda tmp: self.model.save_weights(tmp))
        state = {"epoch": epoch + 1, "weights": weights}
        common.atomic_write(self.folder / CHECKPOINT_STATE, lambda tmp: Path(tmp).write_text(json.dumps(state)))
        if before is not None:
            (self.folder / before["weights"]).unlink(missing_ok=True)


def read_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last complete checkpoint's epoch and weights file, or None before the first."""
    state = folder / CHECKPOINT_STATE
    return json.loads(state.read_text()) if state.is_file() else None


def restore_checkpoint(model: keras.Model, work_dir: Path) -> int:
    """Load the run's last checkpoint into `model` (compiled, so its optimizer's state comes back
    too) and keep history.csv to the epochs it holds; returns those epochs (0: none yet)."""
    checkpoint = read_checkpoint(work_dir / CHECKPOINT_DIR)
    if checkpoint is None:
        return 0
    model.optimizer.build(model.trainable_variables)
    model.load_weights(work_dir / CHECKPOINT_DIR / checkpoint["weights"])
    history = work_dir / "history.csv"
    if history.is_file():  # an epoch logged after the last checkpoint is trained again: log it once
        lines = history.read_text().splitlines(keepends=True)
        history.write_text("".join(lines[: 1 + checkpoint["epoch"]]))
    return int(checkpoint["epoch"])


def run_settings(args: argparse.Namespace, sha256: str) -> dict[str, Any]:
    """What defines a run, as settings.json keeps it: every option but NOT_RUN_SETTINGS."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in NOT_RUN_SETTINGS}
    settings.pop("run_sha256", None)  # set by --export-only, which never writes settings
    settings["dataset_sha256"] = sha256
    return settings


def prepare_work_dir(work_dir: Path, settings: dict[str, Any], resume: bool, command: str) -> None:
    """Refuse to mix runs: a fresh run needs an empty work dir, a resumed one the same settings.

    The command is appended to commands.txt (not to settings.json, which --resume compares),
    so that an --export-only later can name the commands that trained the network.
    """
    settings_file = work_dir / "settings.json"
    if resume:
        if not settings_file.is_file():
            raise SystemExit(f"--resume: {work_dir} holds no earlier run (no settings.json)")
        before = json.loads(settings_file.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise SystemExit(f"--resume: settings differ from the run in {work_dir} (was, now): {changed}")
        if not (work_dir / COMMANDS_FILE).is_file():  # a run started before commands.txt existed
            (work_dir / COMMANDS_FILE).write_text("\n".join(_rebuilt_first_command(work_dir)) + "\n")
    else:
        if settings_file.exists() or (work_dir / CHECKPOINT_DIR).exists():
            raise SystemExit(
                f"{work_dir} holds an earlier run: pass --resume to continue it, "
                "or delete the folder (or choose another --work-dir) to start over"
            )
        work_dir.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings, indent=2) + "\n")
    with open(work_dir / COMMANDS_FILE, "a", encoding="utf-8") as handle:
        handle.write(command + "\n")


def split_for_training(
    args: argparse.Namespace, data: ImageDataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, val_x, val_y, mean, std): the same split and pixel statistics for a
    training run and for an --export-only of it."""
    train_x, train_y, val_x, val_y = split_validation(
        data.train_images, data.train_labels, args.val_fraction, args.seed
    )
    mean, std = train_x.mean(axis=(0, 1, 2)), train_x.std(axis=(0, 1, 2))
    print(f"split: {len(train_y)} train / {len(val_y)} validation images (seed {args.seed})")
    return train_x, train_y, val_x, val_y, mean, std


def compiled_model(
    args: argparse.Namespace, num_classes: int, train_count: int, mean: np.ndarray, std: np.ndarray
) -> keras.Model:
    """The network and its optimizer as the run trains them (in --precision): the checkpoint in
    the work dir holds exactly these weights and optimizer variables."""
    keras.mixed_precision.set_global_policy(args.precision)
    height, width = args.image_size
    model = make_model(num_classes, height, width, mean, std, args.widths)
    steps = math.ceil(train_count / args.batch_size)
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
    return model


def serving_speed(args: argparse.Namespace, num_classes: int, mean: np.ndarray, std: np.ndarray) -> float:
    """In-process images/s at batch 64 of this run's network in float32, as it will be exported.

    Speed does not depend on the weights, so an untrained copy tells before hours of training
    whether the network can serve as fast as it must.
    """
    keras.mixed_precision.set_global_policy("float32")
    height, width = args.image_size
    network = make_model(num_classes, height, width, mean, std, args.widths)
    predict = tf.function(lambda x: network(x, training=False))
    return images_per_second(lambda batch: predict(batch).numpy(), (height, width), 64, args.benchmark_seconds)


def train(
    args: argparse.Namespace, data: ImageDataset, work_dir: Path
) -> tuple[keras.Model, dict[str, Any], np.ndarray, np.ndarray]:
    """Train (or resume) the run; returns the float32 network, the run's summary and the
    validation split (images, labels)."""
    train_x, train_y, val_x, val_y, mean, std = split_for_training(args, data)
    speed = serving_speed(args, len(data.labels), mean, std)
    model = compiled_model(args, len(data.labels), len(train_y), mean, std)
    print(f"model: {model.count_params():,} parameters, widths {args.widths}, {args.precision}; "
          f"about {speed:,.0f} images/s at batch 64 as exported, on this machine (the card measures the export)")

    initial_epoch = restore_checkpoint(model, work_dir)
    # In this order: an epoch is logged before it is checkpointed, so a resume finds no checkpoint
    # without its row in history.csv (restore_checkpoint drops a row without its checkpoint).
    callbacks = [
        EpochClock(),
        keras.callbacks.CSVLogger(str(work_dir / "history.csv"), append=True),
        EpochCheckpoint(work_dir / CHECKPOINT_DIR),
    ]
    one_hot = len(data.labels)
    model.fit(
        batches(train_x, keras.utils.to_categorical(train_y, one_hot), args.batch_size, args.seed, True, args.cutout),
        validation_data=batches(val_x, keras.utils.to_categorical(val_y, one_hot), 1024, args.seed, False),
        epochs=args.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # batches() shuffles the training set itself, every epoch
        verbose=1 if sys.stdout.isatty() else 2,
    )
    keras.mixed_precision.set_global_policy("float32")
    summary = run_summary(work_dir, len(train_y), len(val_y))
    return float32_copy(model, data, args, mean, std), summary, val_x, val_y


def finished_run(
    args: argparse.Namespace, data: ImageDataset, work_dir: Path
) -> tuple[keras.Model, dict[str, Any], np.ndarray, np.ndarray]:
    """--export-only: what `train` returns, rebuilt from the last checkpoint of a finished run."""
    checkpoint = read_checkpoint(work_dir / CHECKPOINT_DIR)
    if checkpoint is None:
        raise SystemExit(f"--export-only: {work_dir} has no checkpoint ({CHECKPOINT_DIR}/{CHECKPOINT_STATE})")
    done = checkpoint["epoch"]
    if done != args.epochs:
        raise SystemExit(
            f"--export-only: the run in {work_dir} has finished {done} of its {args.epochs} epochs; "
            "finish it with --resume first"
        )
    train_x, train_y, val_x, val_y, mean, std = split_for_training(args, data)
    model = compiled_model(args, len(data.labels), len(train_y), mean, std)
    restore_checkpoint(model, work_dir)
    keras.mixed_precision.set_global_policy("float32")
    print(f"model: rebuilt from {work_dir / CHECKPOINT_DIR / checkpoint['weights']} (epoch {done})")
    summary = run_summary(work_dir, len(train_y), len(val_y))
    if summary["epochs_run"] != done:
        raise SystemExit(
            f"--export-only: {work_dir}/history.csv has {summary['epochs_run']} epochs, the checkpoint {done}"
        )
    return float32_copy(model, data, args, mean, std), summary, val_x, val_y


def run_summary(work_dir: Path, train_count: int, val_count: int) -> dict[str, Any]:
    """The card's figures of a run, from its per-epoch CSV."""
    history_csv = work_dir / "history.csv"
    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "seconds": round(sum(float(r["seconds"]) for r in rows), 1),
        "epochs_run": len(rows),
        "train_images": train_count,
        "validation_images": val_count,
        "validation": {k: float(rows[-1][k]) for k in ("val_accuracy", "val_loss")} if rows else {},
        "history_csv": history_csv,
        **_training_commands(work_dir),
    }


def _training_commands(work_dir: Path) -> dict[str, Any]:
    """{"commands": [...], "command_note"?: ...}: the commands that trained the run in
    `work_dir`, the first one first; lines of commands.txt starting with '#' are notes."""
    path = work_dir / COMMANDS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else _rebuilt_first_command(work_dir)
    notes = [line.lstrip("# ") for line in lines if line.startswith("#")]
    return {"commands": [line for line in lines if not line.startswith("#")]} | (
        {"command_note": "; ".join(notes)} if notes else {}
    )


def _rebuilt_first_command(work_dir: Path) -> list[str]:
    """For a run from before commands.txt: a note and a command rebuilt from its settings.json,
    every run setting spelled out, so that it trains the same network."""
    settings = json.loads((work_dir / "settings.json").read_text())
    argv: list[str] = []
    for key, value in settings.items():
        if key == "dataset_sha256" or value is False:
            continue
        argv.append("--" + key.replace("_", "-"))
        if value is not True:
            argv.extend(str(v) for v in (value if isinstance(value, list) else [value]))
    return [
        f"# the first command was rebuilt from {work_dir}/settings.json: the run predates {COMMANDS_FILE}",
        shlex.join(["python", "-m", MODULE, *argv, "--work-dir", str(work_dir)]),
    ]


def float32_copy(
    model: keras.Model,
    data: ImageDataset,
    args: argparse.Namespace,
    mean: np.ndarray,
    std: np.ndarray,
) -> keras.Model:
    """The trained network rebuilt in float32, so the export is float32 whatever trained it."""
    height, width = args.image_size
    exported = make_model(len(data.labels), height, width, mean, std, args.widths)
    exported.set_weights(model.get_weights())
    return exported


# --- export, evaluation, card -------------------------------------------------------------------


def images_per_second(
    predict: Callable[[np.ndarray], Any], size: tuple[int, int], batch_size: int, seconds: float
) -> float:
    """In-process images/s of `predict` on one batch of random uint8 images of `size` (H, W)."""
    images = np.random.default_rng(0).integers(0, 256, (batch_size, *size, 3), dtype=np.uint8)
    return measure_throughput(predict, [images], seconds)


def throughput(model: SavedModel, seconds: float) -> dict[str, float]:
    """In-process images/s of the reloaded SavedModel at batch 1 and 64 (random pixels)."""
    size = (model.card.input.height, model.card.input.width)  # type: ignore[attr-defined]
    return {f"batch_{n}_images_per_second": round(images_per_second(model.predict, size, n, seconds), 1)
            for n in (1, 64)}


def choose_flips(
    args: argparse.Namespace, model: keras.Model, val_x: np.ndarray, val_y: np.ndarray
) -> tuple[keras.Model, np.ndarray, dict[str, Any]]:
    """Test-time flips on or off, decided on the validation split (never the test split):
    with --flip-tta auto, on only if the flip-averaged model scores higher there. Returns the
    chosen model, its validation probabilities and the card's record of the choice."""
    candidates = {"single_view": model, "flip_averaged": with_flip_averaging(model)}
    probabilities = {name: m.predict(val_x, batch_size=256, verbose=0) for name, m in candidates.items()}
    accuracy = {name: float(np.mean(p.argmax(axis=1) == val_y)) for name, p in probabilities.items()}
    use = args.flip_tta == "on" or (args.flip_tta == "auto" and accuracy["flip_averaged"] > accuracy["single_view"])
    choice = {
        "flips": "on" if use else "off",
        "setting": f"--flip-tta {args.flip_tta}",
        "decided_on": f"validation split ({len(val_y)} images held out of training)",
        "rule": "auto: on only if the flip-averaged model is more accurate on the validation split"
        if args.flip_tta == "auto"
        else "set on the command line",
        "validation_accuracy": accuracy,
    }
    print(f"test-time flips {choice['flips']}: validation accuracy {accuracy}")
    chosen = "flip_averaged" if use else "single_view"
    return candidates[chosen], probabilities[chosen], choice


def export_and_evaluate(
    args: argparse.Namespace,
    network: keras.Model,
    data: ImageDataset,
    sha256: str,
    summary: dict[str, Any],
    val_x: np.ndarray,
    val_y: np.ndarray,
) -> Path:
    """Decide flips and fit the temperature on the validation split, then publish the calibrated
    model as the next version (contract.publish): evaluated on the test split, card, plots."""
    model, val_probabilities, flips = choose_flips(args, network, val_x, val_y)
    temperature = fit_temperature(val_probabilities, val_y)
    print(f"calibration: temperature {temperature:.4f} fitted on {len(val_y)} validation images")
    calibration = Calibration(temperature, val_probabilities, val_y, flips)
    with staged_version(args.out, args.version) as staged:
        _write_version(staged, args, network, model, calibration, data, sha256, summary)
    print(f"wrote {staged.target}")
    return staged.target


@dataclass(frozen=True)
class Calibration:
    """What was decided on the validation split: the temperature, and test-time flips or not."""

    temperature: float
    val_probabilities: np.ndarray
    val_labels: np.ndarray
    flips: dict[str, Any]


def _write_version(
    staged: StagedVersion,
    args: argparse.Namespace,
    network: keras.Model,
    model: keras.Model,
    calibration: Calibration,
    data: ImageDataset,
    sha256: str,
    summary: dict[str, Any],
) -> None:
    """Export, evaluate the reloaded SavedModel, then write the card and plots, into the staging folder."""
    height, width = args.image_size
    version, version_dir = staged.version, staged.path
    temperature, flips, val_y = calibration.temperature, calibration.flips, calibration.val_labels
    calibrated = with_temperature(model, temperature)
    common.export_saved_model(
        calibrated, version_dir, tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")
    )
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
            "command": summary["commands"][0],
            "seconds": summary["seconds"],
            "machine": machine_description(),
        },
    }
    write_card(version_dir, card)  # a first card, so the artifact can be loaded to evaluate it

    artifact = staged.load()
    probabilities = common.predict_in_batches(artifact, data.test_images)
    uncalibrated = model.predict(data.test_images, batch_size=256, verbose=0)
    figures = common.classification_figures(data.test_labels, probabilities.argmax(axis=1), data.labels)
    figures["per_class_accuracy"] = {k: v["recall"] for k, v in figures["per_class"].items()}
    card["evaluation"] = {
        "split": "test",
        "images": len(data.test_labels),
        "measured_on": "the reloaded SavedModel",
        **figures,
        "validation": summary["validation"],
    }
    card["calibration"] = calibration_card(
        temperature,
        f"the validation split: {len(val_y)} images held out of training (the network never learned "
        "from them; test-time flips were decided on them too)",
        calibration.val_probabilities,
        val_y,
        uncalibrated,
        probabilities,
        data.test_labels,
        RELIABILITY_PNG,
    )
    card["test_time_flips"] = flips
    card["monitoring"] = {
        "reference": monitoring.reference(probabilities, data.labels, "test", image_sizes=data.test_sizes)
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
            "augmentation": "4-px reflect-padded random crops, horizontal flips"
            + (f", {args.cutout}x{args.cutout} cutout" if args.cutout else ""),
            "precision": args.precision,
            "seed": args.seed,
        }
    )
    if len(summary["commands"]) > 1:
        card["training"]["commands"] = summary["commands"]
    if "command_note" in summary:
        card["training"]["command_note"] = summary["command_note"]
    if args.export_only:
        card["training"]["export_command"] = args.command
    card["model"] = {
        "architecture": f"ResNet-9-style CNN, widths {args.widths}, "
        f"{'flip-averaged' if flips['flips'] == 'on' else 'single view'}, "
        f"temperature-scaled (T = {temperature:.4f})",
        "parameters": int(network.count_params()),
        "export_dtype": "float32",
    }
    card["verification"] = write_verification_sample(
        version_dir,
        artifact,
        data.test_images,
        data.test_labels,
        count=args.verification_count,
        split="test",
        split_description=f"test split of {data.name}, on which the evaluation figures were measured",
        held_out="the network never trained on them, and the test-time flips and the temperature were "
        "decided on the validation split, not on them.",
    )
    card["explanations"] = faithfulness.explanations_section(
        artifact, data.test_images, split="test", split_description=f"test split of {data.name}"
    )
    card["inference"] = {
        **throughput(artifact, args.benchmark_seconds),
        "how": "in-process SavedModel.predict, random uint8 images, after a warm-up call; "
        f"python -m {MODULE} --benchmark {staged.target}",
        "machine": machine_description(),
    }
    write_card(version_dir, card)
    common.plot_history(summary["history_csv"], version_dir / "training_curves.png")
    common.plot_confusion(figures["confusion_matrix"], data.labels, version_dir / "confusion_matrix.png")
    plot_reliability(uncalibrated, probabilities, data.test_labels, temperature, version_dir / RELIABILITY_PNG)
    test = card["calibration"]["test"]
    print(
        f"test accuracy {figures['accuracy']:.4f}; ECE {test['before']['ece']:.4f} -> {test['after']['ece']:.4f} "
        f"(T {temperature:.4f}); inference {card['inference']}"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.benchmark is not None:
        print(json.dumps(throughput(load_model(args.benchmark), args.benchmark_seconds)))
        return
    common.set_seed(args.seed)
    data, sha256 = read_data(args.data, *args.image_size)
    work_dir = args.work_dir or common.REPO_ROOT / "runs" / args.out.name
    if args.export_only:
        if sha256 != args.run_sha256:
            raise SystemExit(f"--export-only: {args.data} is not the dataset the run in {work_dir} trained on (sha256)")
        network, summary, val_x, val_y = finished_run(args, data, work_dir)
    else:
        prepare_work_dir(work_dir, run_settings(args, sha256), args.resume, args.command)
        network, summary, val_x, val_y = train(args, data, work_dir)
    export_and_evaluate(args, network, data, sha256, summary, val_x, val_y)


if __name__ == "__main__":
    main()
