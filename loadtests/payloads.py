"""Request bodies for the load tests: images of several sizes and formats, and real-length texts.

Real data when the shared datasets are there (CIFAR-10 test JPEGs, IMDB test reviews, GOP
debate tweets), generated stand-ins of the same shapes otherwise, so that the load test runs
on any machine. Everything is built once, up front: the users only pick from these lists.
"""

from __future__ import annotations

import csv
import io
import random
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


@dataclass(frozen=True)
class ImageBody:
    """One encoded image, ready to be sent as a raw body or a multipart part."""

    name: str
    content_type: str
    data: bytes


# (name, size or None to keep the source size, format, Pillow mode, content type)
IMAGE_VARIANTS = [
    ("32x32.jpg", None, "JPEG", "RGB", "image/jpeg"),
    ("64x64.png", (64, 64), "PNG", "RGB", "image/png"),
    ("224x224.jpg", (224, 224), "JPEG", "RGB", "image/jpeg"),
    ("640x480.jpg", (640, 480), "JPEG", "RGB", "image/jpeg"),
    ("96x96.webp", (96, 96), "WEBP", "RGB", "image/webp"),
    ("128x128-grey.png", (128, 128), "PNG", "L", "image/png"),
    ("48x48-alpha.png", (48, 48), "PNG", "RGBA", "image/png"),
]


def _cifar_sources(datasets: Path, count: int, rng: random.Random) -> list[Image.Image]:
    path = datasets / "cifar10-jpeg.zip"
    if not path.is_file():
        return []
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if "/test/" in n and n.lower().endswith(".jpg")]
        return [Image.open(io.BytesIO(archive.read(name))).convert("RGB")
                for name in rng.sample(names, min(count, len(names)))]


def _generated_sources(count: int, rng: random.Random) -> list[Image.Image]:
    """Photos they are not, but coloured shapes on a gradient exercise the same decoding and resizing."""
    images = []
    for _ in range(count):
        image = Image.linear_gradient("L").resize((32, 32)).convert("RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.randrange(24), rng.randrange(24)
            colour = tuple(rng.randrange(256) for _ in range(3))
            draw.ellipse((x, y, x + rng.randrange(4, 16), y + rng.randrange(4, 16)), fill=colour)
        images.append(image)
    return images


def _encode(source: Image.Image, variant: tuple) -> ImageBody:
    name, size, fmt, mode, content_type = variant
    image = source if size is None else source.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format=fmt, **({"quality": 85} if fmt in ("JPEG", "WEBP") else {}))
    return ImageBody(name, content_type, buffer.getvalue())


def images(count: int = 96, datasets: Path = DATASETS, seed: int = 0) -> list[ImageBody]:
    """`count` images, the variants of IMAGE_VARIANTS in turn; CIFAR-10 test images when available."""
    rng = random.Random(seed)
    sources = _cifar_sources(datasets, count, rng) or _generated_sources(count, rng)
    return [_encode(source, IMAGE_VARIANTS[i % len(IMAGE_VARIANTS)]) for i, source in enumerate(sources)]


def _imdb_reviews(datasets: Path, count: int) -> list[str]:
    path = datasets / "aclImdb_v1_labelled.tar.gz"
    if not path.is_file():
        return []
    reviews = []
    with tarfile.open(path) as archive:
        for member in archive:
            if "/test/" in member.name and member.name.endswith(".txt") and member.isfile():
                handle = archive.extractfile(member)
                if handle is not None:
                    reviews.append(handle.read().decode("utf-8"))
                if len(reviews) == count:
                    break
    return reviews


def _tweets(datasets: Path, count: int, rng: random.Random) -> list[str]:
    path = datasets / "gop-debate" / "Sentiment.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return rng.sample(texts, min(count, len(texts)))


_WORDS = [
    "the", "film", "story", "acting", "plot", "great", "awful", "boring", "brilliant", "moving", "slow", "cast",
    "scene", "director", "music", "ending", "characters", "funny", "dull", "love", "hate", "wonderful", "terrible",
    "script", "debate", "candidate", "question", "answer", "crowd", "tonight", "stage", "rally", "vote",
]


def _generated_texts(count: int, min_words: int, max_words: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.choices(_WORDS, k=rng.randint(min_words, max_words))).capitalize() + "."
            for _ in range(count)]


def reviews(count: int = 200, datasets: Path = DATASETS, seed: int = 0) -> list[str]:
    """Movie reviews (IMDB test split when available: 10 to 2,500 words, about 230 on average)."""
    return _imdb_reviews(datasets, count) or _generated_texts(count, 40, 600, random.Random(seed))


def tweets(count: int = 200, datasets: Path = DATASETS, seed: int = 0) -> list[str]:
    """Tweets (the GOP debate tweets when available: up to 140 characters)."""
    rng = random.Random(seed)
    return _tweets(datasets, count, rng) or _generated_texts(count, 5, 22, rng)
