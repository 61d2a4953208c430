"""Labelled image datasets read into memory as uint8 arrays, whatever form they arrive in.

Two forms, told apart by the path:
- CIFAR-10 as downloaded: `cifar-10-python.tar.gz`, or the extracted `cifar-10-batches-py/`
  (pickled batches `data_batch_1..5`, `test_batch`, `batches.meta`).
- An image-folder tree `<root>/{train,test}/<class>/<image>`, as a folder or a `.zip`;
  `<root>` may sit one folder down (zips often hold a single top folder).

Every image is decoded once and converted to the model's input size by the conversion the
service uses (contract.pixels). Files that cannot be decoded are skipped and listed, so one
bad file never stops a run.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.pixels import model_pixels

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLITS = ("train", "test")
CIFAR_DIR = "cifar-10-batches-py"


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message says what to fix."""


@dataclass
class ImageDataset:
    """Both splits in memory: images uint8 [n, H, W, 3], labels int32 [n] indexing `labels`."""

    name: str
    labels: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded
    # (height, width) of each test image as its file declared it, before resizing; None if unknown
    test_sizes: np.ndarray | None = None


def load_dataset(path: Path, height: int, width: int) -> ImageDataset:
    """Read whichever supported form `path` is (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _resize_dataset(_read_cifar_tar(path), height, width)
    if path.is_dir() and (path / "data_batch_1").is_file():
        return _resize_dataset(_read_cifar_dir(path), height, width)
    if path.is_dir() and (path / CIFAR_DIR / "data_batch_1").is_file():
        return _resize_dataset(_read_cifar_dir(path / CIFAR_DIR), height, width)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            return _read_image_folders(path.stem, names, archive.read, height, width)
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        return _read_image_folders(path.name, names, lambda n: (path / n).read_bytes(), height, width)
    raise DatasetError(
        f"{path}: not a recognised dataset; expected cifar-10-python.tar.gz, "
        f"a {CIFAR_DIR}/ folder, or an image-folder tree <root>/{{train,test}}/<class>/ "
        "(folder or .zip)"
    )


def dataset_sha256(path: Path) -> str:
    """sha256 of the file, or of a folder's sorted relative paths and contents."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


# --- CIFAR-10 pickled batches ----------------------------------------------------------------


def _cifar_batch(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = pickle.loads(raw, encoding="bytes")
    # Rows are 3072 bytes: the red plane, then green, then blue, each 32x32 row-major.
    images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(batch[b"labels"], np.int32)


def _cifar_from_members(read: dict[str, bytes]) -> ImageDataset:
    missing = [n for n in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch") if n not in read]
    if missing:
        raise DatasetError(f"CIFAR-10 batches missing: {missing}")
    train = [_cifar_batch(read[f"data_batch_{i}"]) for i in range(1, 6)]
    test_images, test_labels = _cifar_batch(read["test_batch"])
    if "batches.meta" in read:
        meta = pickle.loads(read["batches.meta"], encoding="bytes")
        labels = [name.decode() for name in meta[b"label_names"]]
    else:
        labels = [f"class_{i}" for i in range(10)]
    return ImageDataset(
        name="cifar10",
        labels=labels,
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        test_sizes=np.full((len(test_labels), 2), 32, np.int32),  # every CIFAR-10 image is 32x32
    )


def _read_cifar_dir(folder: Path) -> ImageDataset:
    return _cifar_from_members({p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})


def _read_cifar_tar(path: Path) -> ImageDataset:
    members: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                members[PurePosixPath(member.name).name] = handle.read()
    return _cifar_from_members(members)


def _resize_dataset(data: ImageDataset, height: int, width: int) -> ImageDataset:
    if data.train_images.shape[1:3] != (height, width):
        data.train_images = _resize_all(data.train_images, height, width)
        data.test_images = _resize_all(data.test_images, height, width)
    return data


def _resize_all(images: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([model_pixels(Image.fromarray(image), height, width) for image in images])


# --- image-folder trees ----------------------------------------------------------------------


def _find_root(names: list[str]) -> str:
    """The prefix under which `train/` and `test/` sit: '' or one top folder."""
    tops = {PurePosixPath(n).parts[0] for n in names if len(PurePosixPath(n).parts) > 1}
    if set(SPLITS) <= tops:
        return ""
    candidates = sorted(
        top for top in tops if all(any(n.startswith(f"{top}/{split}/") for n in names) for split in SPLITS)
    )
    if len(candidates) == 1:
        return candidates[0] + "/"
    raise DatasetError(
        f"expected an image-folder tree <root>/{{train,test}}/<class>/<image>; "
        f"found top-level entries {sorted(tops)[:10]}"
    )


def split_files(names: list[str], split: str) -> dict[str, list[str]]:
    """class name -> sorted image paths of one split of an image-folder tree, from its file names
    (a zip's or a folder's); for a reader that wants the files, not decoded pixels."""
    return _split_files(names, _find_root(names), split)


def _split_files(names: list[str], prefix: str, split: str) -> dict[str, list[str]]:
    """class name -> sorted image paths, for one split; class folders without images included."""
    classes: dict[str, list[str]] = {}
    for name in names:
        if not name.startswith(f"{prefix}{split}/"):
            continue
        parts = PurePosixPath(name[len(prefix) :]).parts
        if len(parts) < 3 or any(part.startswith(".") for part in parts):
            continue  # a stray file beside the class folders, or a hidden file
        files = classes.setdefault(parts[1], [])
        if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            files.append(name)
    return {label: sorted(files) for label, files in sorted(classes.items())}


def _decode(
    files: dict[str, list[str]],
    labels: list[str],
    read,
    height: int,
    width: int,
    skipped: list[str],
) -> Iterator[tuple[np.ndarray, int, tuple[int, int]]]:
    """(pixels resized to height x width, class index, the file's own (height, width)) per image."""
    for label, paths in files.items():
        for name in paths:
            try:
                with Image.open(io.BytesIO(read(name))) as image:
                    size = (image.height, image.width)  # before model_pixels() may draft a JPEG smaller
                    yield model_pixels(image, height, width), labels.index(label), size
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                why = "not a decodable image" if isinstance(exc, UnidentifiedImageError) else exc
                skipped.append(f"{name}: {type(exc).__name__}: {why}")


def _read_image_folders(name: str, names: list[str], read, height: int, width: int) -> ImageDataset:
    prefix = _find_root(names)
    train_files, test_files = (_split_files(names, prefix, split) for split in SPLITS)
    labels = list(train_files)
    if len(labels) < 2:
        raise DatasetError(f"{prefix}train/ needs at least 2 class folders, found {labels}")
    unknown = sorted(set(test_files) - set(labels))
    if unknown:
        raise DatasetError(f"{prefix}test/ has classes that training does not: {unknown} (training has {labels})")
    skipped: list[str] = []
    splits = []
    for split, files in (("train", train_files), ("test", test_files)):
        decoded = list(_decode(files, labels, read, height, width, skipped))
        counts = np.bincount([label for _, label, _ in decoded], minlength=len(labels))
        empty = [labels[i] for i in range(len(labels)) if counts[i] == 0 and (split == "train" or labels[i] in files)]
        if empty:
            raise DatasetError(f"{prefix}{split}/: no readable images for class(es) {empty}")
        if not decoded:
            raise DatasetError(f"{prefix}{split}/: no readable images at all")
        images = np.stack([image for image, _, _ in decoded]).astype(np.uint8)
        sizes = np.asarray([size for _, _, size in decoded], np.int32)
        splits.append((images, np.asarray([label for _, label, _ in decoded], np.int32), sizes))
    (train_images, train_labels, _), (test_images, test_labels, test_sizes) = splits
    return ImageDataset(name, labels, train_images, train_labels, test_images, test_labels, skipped, test_sizes)


# --- splits and augmentation -----------------------------------------------------------------


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a stratified validation set from the training images: (train_x, train_y, val_x, val_y).

    Each class gives `fraction` of its images (at least one, never all of them), chosen
    by a generator seeded with `seed`, so the split is the same on every run.
    """
    if not 0 < fraction < 1:
        raise DatasetError(f"validation fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    val_index = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) < 2:
            raise DatasetError(f"class index {label} has {len(members)} training image(s); need 2+ to carve validation")
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        val_index.append(members[:count])
    val = np.sort(np.concatenate(val_index))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return images[train], labels[train], images[val], labels[val]


def augment_batch(images, pad: int = 4, cutout: int = 0):
    """Random translations by up to `pad` pixels (reflect-padded crops), horizontal flips and,
    with `cutout` > 0, one `cutout` x `cutout` square (cut at the border) painted in the image's
    mean colour, centred anywhere in the image (cutout, DeVries and Taylor 2017).

    Works on a whole uint8 batch [n, H, W, 3] at once, each image with its own offsets,
    which is far cheaper than mapping per image.
    """
    import tensorflow as tf

    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    rows = tf.random.uniform([n, 1], 0, 2 * pad + 1, tf.int32) + tf.range(height)[None]
    cols = tf.random.uniform([n, 1], 0, 2 * pad + 1, tf.int32) + tf.range(width)[None]
    cropped = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    flip = tf.random.uniform([n, 1, 1, 1]) < 0.5
    augmented = tf.where(flip, tf.reverse(cropped, axis=[2]), cropped)
    if cutout <= 0:
        return augmented
    top = tf.random.uniform([n, 1, 1, 1], 0, height, tf.int32) - cutout // 2
    left = tf.random.uniform([n, 1, 1, 1], 0, width, tf.int32) - cutout // 2
    row = tf.range(height)[None, :, None, None]
    col = tf.range(width)[None, None, :, None]
    square = (row >= top) & (row < top + cutout) & (col >= left) & (col < left + cutout)
    mean = tf.cast(tf.round(tf.reduce_mean(tf.cast(augmented, tf.float32), axis=[1, 2], keepdims=True)), tf.uint8)
    return tf.where(square, mean, augmented)
