"""Readers for the two sentiment datasets, as their users download them.

- IMDB (Maas et al., 2011): `aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`, as a folder
  or as the `.tar.gz`; `train/unsup` (unlabelled) is ignored.
- GOP debate tweets (CrowdFlower `Sentiment.csv`): columns `id`, `sentiment`, `text`; there is
  no official split, so a fixed, stratified one is made here from a seed. Where the file has
  `sentiment_confidence` (the annotators' agreement on the label), it comes along as a
  per-row training weight: an agreement near 1/3 makes the label close to a coin toss.

Each reader returns the splits and a `skipped` count per reason, so nothing vanishes silently.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMDB_LABELS = ["negative", "positive"]
TWEET_LABELS = ["negative", "neutral", "positive"]
_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/[^/]+\.txt$")


class DatasetError(Exception):
    """A dataset that cannot be read as the format it claims; the message names the path."""


@dataclass
class TextSplit:
    texts: list[str]
    labels: np.ndarray  # int class indices into the dataset's labels
    ids: list[str] = field(default_factory=list)  # row identifiers, where the dataset has them
    confidence: np.ndarray | None = None  # how sure the annotators were of each label, (0, 1]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray) -> TextSplit:
        return TextSplit(
            [self.texts[i] for i in indices],
            self.labels[indices],
            [self.ids[i] for i in indices] if self.ids else [],
            None if self.confidence is None else self.confidence[indices],
        )

    def __add__(self, other: TextSplit) -> TextSplit:
        both = self.confidence is not None and other.confidence is not None
        return TextSplit(
            self.texts + other.texts,
            np.concatenate([self.labels, other.labels]),
            self.ids + other.ids,
            np.concatenate([self.confidence, other.confidence]) if both else None,
        )


@dataclass
class TextDataset:
    name: str
    labels: list[str]
    train: TextSplit
    test: TextSplit
    test_split: str  # says in words what the test split is
    skipped: dict[str, int]


def dataset_sha256(path: Path) -> str:
    """sha256 of the dataset file, or of a folder's files (relative names and contents)."""
    if path.is_file():
        from training.common import sha256_file

        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def read_imdb(path: Path) -> TextDataset:
    """The labelled IMDB reviews from an `aclImdb/` folder (or its parent) or the `.tar.gz`."""
    rows: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    skipped: Counter[str] = Counter()

    def add(name: str, data: bytes) -> None:
        match = _IMDB_MEMBER.search(name)
        if match is None:
            return
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            skipped["not UTF-8"] += 1
            return
        if not text:
            skipped["empty review"] += 1
            return
        split, polarity = match.groups()
        rows[split].append((name, text, IMDB_LABELS.index("positive" if polarity == "pos" else "negative")))

    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    handle = archive.extractfile(member) if member.isfile() else None
                    if handle is not None and _IMDB_MEMBER.search(member.name):
                        add(member.name, handle.read())
        except tarfile.TarError as exc:
            raise DatasetError(f"{path}: not a readable tar archive ({exc})") from exc
    elif path.is_dir():
        root = path if path.name == "aclImdb" else path / "aclImdb"
        for file in root.glob("*/*/*.txt"):
            add("aclImdb/" + file.relative_to(root).as_posix(), file.read_bytes())
    else:
        raise DatasetError(f"{path}: no such file or folder")
    if not rows["train"] or not rows["test"]:
        raise DatasetError(f"{path}: no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews found")

    def split(items: list[tuple[str, str, int]]) -> TextSplit:
        items.sort()  # archive and folder order differ; a sorted order makes runs repeatable
        return TextSplit(
            [t for _, t, _ in items],
            np.array([y for *_, y in items]),
            [n.rsplit("/", 1)[1] for n, *_ in items],
        )

    test = split(rows["test"])
    return TextDataset(
        "IMDB Large Movie Review Dataset v1.0 (labelled reviews)",
        IMDB_LABELS,
        split(rows["train"]),
        test,
        f"IMDB test ({len(test):,} reviews)",
        dict(skipped),
    )


def read_tweets(path: Path, test_fraction: float = 0.2, seed: int = 42) -> TextDataset:
    """GOP debate tweets with a fixed, stratified train/test split (rows identified by `id`)."""
    from sklearn.model_selection import train_test_split

    texts, labels, ids, confidences = [], [], [], []
    skipped: Counter[str] = Counter()
    seen: set[str] = set()
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"id", "sentiment", "text"} - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{path}: missing columns {sorted(missing)}, has {reader.fieldnames}")
            has_confidence = "sentiment_confidence" in (reader.fieldnames or [])
            for row in reader:
                row_id, label = (row["id"] or "").strip(), (row["sentiment"] or "").strip().lower()
                text = (row["text"] or "").strip()
                confidence = _confidence(row["sentiment_confidence"]) if has_confidence else 1.0
                if not row_id:
                    skipped["no id"] += 1
                elif row_id in seen:
                    skipped["duplicate id"] += 1
                elif label not in TWEET_LABELS:
                    skipped["unknown sentiment"] += 1
                elif not text:
                    skipped["empty text"] += 1
                elif confidence is None:
                    skipped["sentiment_confidence not in (0, 1]"] += 1
                else:
                    seen.add(row_id)
                    texts.append(text)
                    labels.append(TWEET_LABELS.index(label))
                    ids.append(row_id)
                    confidences.append(confidence)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read as a UTF-8 CSV ({exc})") from exc
    everything = TextSplit(
        texts,
        np.array(labels),
        ids,
        np.array(confidences, dtype=np.float32) if has_confidence else None,
    )
    train_idx, test_idx = train_test_split(
        np.arange(len(texts)),
        test_size=test_fraction,
        stratify=everything.labels,
        random_state=seed,
    )
    test = everything.subset(np.sort(test_idx))
    return TextDataset(
        "First GOP Debate Twitter Sentiment (CrowdFlower)",
        TWEET_LABELS,
        everything.subset(np.sort(train_idx)),
        test,
        f"stratified {test_fraction:.0%} test split, seed {seed} ({len(test):,} tweets, ids in test_ids.txt)",
        dict(skipped),
    )


def _confidence(value: str | None) -> float | None:
    try:
        confidence = float(value or "")
    except ValueError:
        return None
    return confidence if 0.0 < confidence <= 1.0 else None


def validation_split(train: TextSplit, fraction: float, seed: int) -> tuple[TextSplit, TextSplit]:
    """Carve a stratified validation set out of the training split."""
    from sklearn.model_selection import train_test_split

    fit_idx, val_idx = train_test_split(
        np.arange(len(train)), test_size=fraction, stratify=train.labels, random_state=seed
    )
    return train.subset(np.sort(fit_idx)), train.subset(np.sort(val_idx))
