"""Dataset readers: CIFAR-10 pickles and image-folder trees, built here in tmp_path."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.service.images import encode
from training.image_data import DatasetError, augment_batch, load_dataset, split_validation

COLOURS = {"blue": (30, 30, 200), "green": (30, 200, 30), "red": (200, 30, 30)}


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int], seed: int, fmt: str = "PNG") -> bytes:
    """A noisy image of one colour, `size` = (height, width)."""
    rng = np.random.default_rng(seed)
    pixels = (np.asarray(colour) + rng.normal(0, 25, (*size, 3))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def image_tree(per_class: dict[str, int], top: str = "") -> dict[str, bytes]:
    """Relative path -> bytes of a tree <top>/{train,test}/<class>/, one corrupt training file.

    Images come in mixed sizes and formats (and one greyscale), as users' folders do.
    """
    files: dict[str, bytes] = {}
    for split, count in per_class.items():
        for index, (label, colour) in enumerate(COLOURS.items()):
            for i in range(count):
                size = (20 + i % 3, 30 - i % 2)
                fmt = "JPEG" if i % 2 else "PNG"
                files[f"{top}{split}/{label}/{i:04d}.{fmt.lower()}"] = png_bytes(colour, size, 100 * index + i, fmt)
    grey = io.BytesIO()
    Image.new("L", (7, 9), 128).save(grey, "PNG")
    files[f"{top}train/blue/grey.png"] = grey.getvalue()
    files[f"{top}train/red/broken.jpg"] = b"\xff\xd8\xff this is not really a JPEG"
    files[f"{top}train/notes.txt"] = b"not a class folder"
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def cifar_batches(seed: int = 0) -> dict[str, bytes]:
    """Pickled batches in the CIFAR-10 python format, with known pixels and labels."""
    rng = np.random.default_rng(seed)

    def batch(n: int, offset: int) -> bytes:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        data[:, :1024] = 7  # the whole red plane
        labels = [(offset + i) % 10 for i in range(n)]
        return pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"x"})

    members = {f"data_batch_{i}": batch(4, i) for i in range(1, 6)}
    members["test_batch"] = batch(6, 0)
    names = [f"thing{i}".encode() for i in range(10)]
    members["batches.meta"] = pickle.dumps({b"label_names": names})
    return members


def test_cifar_folder_and_tarball_read_the_same(tmp_path: Path) -> None:
    members = cifar_batches()
    folder = write_folder(tmp_path / "extracted" / "cifar-10-batches-py", members)
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-py")

    for path in (folder, folder.parent, tarball):
        data = load_dataset(path, 32, 32)
        assert data.labels == [f"thing{i}" for i in range(10)]
        assert data.train_images.shape == (20, 32, 32, 3) and data.test_images.shape == (
            6,
            32,
            32,
            3,
        )
        assert data.train_images.dtype == np.uint8
        # Channel planes become the last axis: red is channel 0 everywhere.
        assert (data.train_images[..., 0] == 7).all()
        assert data.train_labels.tolist()[:5] == [1, 2, 3, 4, 2]
        assert data.test_labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_cifar_resized_on_request(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "cifar-10-batches-py", cifar_batches())
    data = load_dataset(folder, 16, 24)
    assert data.train_images.shape == (20, 16, 24, 3)
    assert data.test_images.shape == (6, 16, 24, 3)
    # the sizes the images came in, for the card's drift reference, are CIFAR's own
    assert data.test_sizes.tolist() == [[32, 32]] * 6


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_image_tree_with_top_folder_and_corrupt_file(tmp_path: Path, form: str) -> None:
    files = image_tree({"train": 4, "test": 2}, top="mydata/")
    path = write_folder(tmp_path / "tree", files) if form == "folder" else write_zip(tmp_path / "d.zip", files)

    data = load_dataset(path, 12, 20)

    assert data.labels == ["blue", "green", "red"]
    assert data.train_images.shape == (13, 12, 20, 3)  # 3 x 4 + the greyscale one
    assert data.test_images.shape == (6, 12, 20, 3)
    assert np.bincount(data.train_labels).tolist() == [5, 4, 4]
    assert len(data.skipped) == 1 and "broken.jpg" in data.skipped[0]
    # each test image's (height, width) as the file has it, before resizing to 12 x 20
    assert sorted(map(tuple, data.test_sizes.tolist())) == sorted([(20, 30), (21, 29)] * 3)
    # Each class keeps its colour through decoding and resizing.
    red = data.train_images[data.train_labels == 2].mean(axis=(0, 1, 2))
    assert red[0] > 150 and red[2] < 80


def test_image_tree_at_the_root_of_a_zip(tmp_path: Path) -> None:
    data = load_dataset(write_zip(tmp_path / "d.zip", image_tree({"train": 2, "test": 1})), 8, 8)
    assert data.train_images.shape[1:] == (8, 8, 3) and len(data.test_labels) == 3


def test_empty_training_class_is_an_error(tmp_path: Path) -> None:
    files = image_tree({"train": 2, "test": 1})
    files = {k: v for k, v in files.items() if not k.startswith("train/green/")}
    files["train/green/broken.png"] = b"garbage"
    with pytest.raises(DatasetError, match="green"):
        load_dataset(write_zip(tmp_path / "d.zip", files), 8, 8)


def test_test_class_unknown_to_training_is_an_error(tmp_path: Path) -> None:
    files = image_tree({"train": 2, "test": 1})
    files["test/purple/0000.png"] = png_bytes((120, 0, 120), (8, 8), 0)
    with pytest.raises(DatasetError, match="purple"):
        load_dataset(write_folder(tmp_path / "tree", files), 8, 8)


def test_unrecognised_path_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="train,test"):
        load_dataset(tmp_path / "empty", 8, 8)
    with pytest.raises(DatasetError, match="no such"):
        load_dataset(tmp_path / "missing.zip", 8, 8)


def test_validation_split_is_stratified_disjoint_and_fixed_by_seed() -> None:
    images = np.arange(60, dtype=np.uint8).reshape(60, 1, 1, 1)
    labels = np.repeat([0, 1, 2], 20)

    train_x, train_y, val_x, val_y = split_validation(images, labels, 0.25, seed=3)

    assert np.bincount(val_y).tolist() == [5, 5, 5]
    assert np.bincount(train_y).tolist() == [15, 15, 15]
    assert not set(train_x.ravel()) & set(val_x.ravel())
    assert set(train_x.ravel()) | set(val_x.ravel()) == set(range(60))
    assert np.array_equal(split_validation(images, labels, 0.25, seed=3)[2], val_x)
    assert not np.array_equal(split_validation(images, labels, 0.25, seed=4)[2], val_x)


def test_cutout_paints_one_square_of_each_image_in_its_own_mean_colour_and_leaves_the_rest() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(1, 255, (32, 12, 12, 3), dtype=np.uint8)

    out = augment_batch(images, pad=0, cutout=4).numpy()

    for image, result in zip(images, out, strict=True):
        # With pad=0 an image is only mirrored or not: compare with the view that differs least.
        source = min((image, image[:, ::-1]), key=lambda view: int(np.sum(view != result)))
        changed = np.any(result != source, axis=2)
        rows, cols = np.nonzero(changed)
        if rows.size == 0:
            continue  # the square may fall where painting it changes nothing only by chance
        # One square of at most 4x4 (cut at the border), all of it one colour: the image's mean.
        assert rows.max() - rows.min() < 4 and cols.max() - cols.min() < 4
        painted = result[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].reshape(-1, 3)
        assert np.all(painted == painted[0])
        assert np.abs(painted[0].astype(int) - source.reshape(-1, 3).mean(axis=0)).max() <= 1
    assert np.mean([np.any(o != i) for o, i in zip(out, images, strict=True)]) > 0.9


def test_augmentation_gives_shifted_or_mirrored_crops_of_each_image() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 6, 10, 3), dtype=np.uint8)

    out = augment_batch(images, pad=2).numpy()

    assert out.shape == images.shape and out.dtype == np.uint8
    assert not np.array_equal(out, images)  # 16 images all left untouched: odds ~ (1/50)^16
    for image, result in zip(images, out, strict=True):
        padded = np.pad(image, [(2, 2), (2, 2), (0, 0)], mode="reflect")
        crops = [padded[y : y + 6, x : x + 10] for y in range(5) for x in range(5)]
        assert any(np.array_equal(result, c) or np.array_equal(result, c[:, ::-1]) for c in crops)


def _hard_images() -> dict[str, bytes]:
    """File name -> bytes of images whose conversion has choices to make: big, turned, transparent, 16-bit."""
    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; a viewer rotates the pixels 90 degrees
    transparent = Image.new("RGBA", (50, 40), (200, 30, 30, 255))
    transparent.paste((0, 0, 255, 0), (0, 0, 25, 40))  # left half: fully transparent blue
    wide_grey = Image.fromarray(rng.integers(0, 65536, (45, 35), np.uint16))
    palette = Image.new("P", (30, 30), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    palette.info["transparency"] = 0
    return {"a-photo.jpg": encode(photo, "JPEG", exif=exif, quality=90),
            "b-transparent.png": encode(transparent, "PNG"),
            "c-grey16.png": encode(wide_grey, "PNG"),
            "d-palette.gif": encode(palette, "GIF", transparency=0)}


def test_training_reads_each_image_into_the_pixels_the_service_makes_of_it(tmp_path: Path) -> None:
    """Training-serving skew: a model must see at serving the pixels it was trained on."""
    from service.core.imaging import decode_image

    hard = _hard_images()
    files = {f"train/{label}/0.png": png_bytes(colour, (8, 8), 0) for label, colour in COLOURS.items()}
    files |= {f"test/red/{name}": data for name, data in hard.items()}
    data = load_dataset(write_zip(tmp_path / "d.zip", files), 24, 32)

    for pixels, (name, raw) in zip(data.test_images, sorted(hard.items()), strict=True):
        served, _, _ = decode_image(raw, 24, 32, max_pixels=10**6)
        assert np.array_equal(pixels, served), name
    # The file's own size is recorded, not the reduced one a JPEG is decoded at.
    assert data.test_sizes.tolist() == [[300, 400], [40, 50], [45, 35], [30, 30]]
    # And transparency is shown on white, as a viewer shows it.
    transparent = data.test_images[1]
    assert (transparent[:, :14] == 255).all() and (transparent[:, 18:, 0] == 200).all()
