"""Tiny sentiment datasets and GloVe files that the tests write themselves."""

from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import numpy as np

POSITIVE = [
    "a great wonderful film",
    "loved it , brilliant acting",
    "superb and moving story",
    "great fun , wonderful cast",
    "brilliant , a joy to watch",
]
NEGATIVE = [
    "a terrible boring film",
    "hated it , awful acting",
    "dull and stupid story",
    "awful mess , terrible cast",
    "boring , a waste of time",
]
GLOVE_WORDS = [
    "the",
    "a",
    "great",
    "wonderful",
    "film",
    "terrible",
    "boring",
    "awful",
    "good",
    "bad",
]


def write_glove(path: Path, dim: int) -> Path:
    """Stanford's text format: a word, then `dim` floats, per line."""
    rng = np.random.default_rng(dim)
    lines = [w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=dim)) for w in GLOVE_WORDS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_imdb_folder(tmp_path: Path) -> Path:
    """aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt plus a train/unsup folder to ignore."""
    root = tmp_path / "aclImdb"
    for split, copies in (("train", 4), ("test", 2)):
        for polarity, texts, rating in (("pos", POSITIVE, 9), ("neg", NEGATIVE, 2)):
            folder = root / split / polarity
            folder.mkdir(parents=True)
            for i in range(copies * len(texts)):
                text = texts[i % len(texts)] + ("<br /><br />the end" if i % 3 == 0 else "")
                (folder / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("unlabelled", encoding="utf-8")
    (root / "README").write_text("tiny copy", encoding="utf-8")
    return root


def write_imdb_tarball(imdb_folder: Path, tmp_path: Path) -> Path:
    path = tmp_path / "aclImdb_tiny.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(imdb_folder, arcname="aclImdb")
    return path


CONFIDENCES = ["1.0", "0.6667", "0.35"]
TWEETS_SKIPPED = {
    "duplicate id": 1,
    "unknown sentiment": 1,
    "empty text": 1,
    "sentiment_confidence not in (0, 1]": 1,
}


def write_tweets_csv(tmp_path: Path) -> Path:
    """Sentiment.csv's columns that matter, 60 good rows and one bad row of each kind;
    `sentiment_confidence` cycles through 1.0, 0.6667 and 0.35 on the good rows."""
    path = tmp_path / "Sentiment.csv"
    texts = {
        "Positive": POSITIVE,
        "Negative": NEGATIVE,
        "Neutral": ["watching the debate", "who is on stage"],
    }
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "candidate", "sentiment", "sentiment_confidence", "tweet_id", "text"])
        row_id = 0
        for i in range(20):
            for label, pool in texts.items():
                row_id += 1
                writer.writerow(
                    [
                        row_id,
                        "",
                        label,
                        CONFIDENCES[row_id % 3],
                        "6.29E+17",
                        f"RT @user{i}: {pool[i % len(pool)]} #GOPDebate http://t.co/x{i}",
                    ]
                )
        writer.writerow([row_id, "", "Positive", "1", "6.29E+17", "a duplicate id"])
        writer.writerow([row_id + 1, "", "Mixed", "1", "6.29E+17", "an unknown label"])
        writer.writerow([row_id + 2, "", "Neutral", "1", "6.29E+17", "   "])
        writer.writerow([row_id + 3, "", "Neutral", "n/a", "6.29E+17", "no confidence"])
    return path
