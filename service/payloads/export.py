"""A payload log turned into what the training jobs read, the model's answers kept as suggestions only.

- A text model's records become the CSV that `python -m training.sentiment --data OUT.csv
  --text-column text --label-column label` reads: the `label` column is left empty for people to
  fill (training refuses a row with an empty label, naming it), `suggested_label` holds the model's.
- An image model's records become the image-folder tree that `python -m training.image_classifier
  --data OUT` reads, `OUT/{train,test}/<label>/<image>`, each image in the folder of the label the
  model suggested, with README.txt and suggested.json saying so. The test split takes a share of
  each label's images, chosen by their sha256, so the same log always splits the same way.

Inputs that occur more than once are exported once (a repeated text or image in both splits would
make the test figures too good). What cannot be exported is counted in the summary: texts logged
as a hash only, images logged without their bytes, blank texts (training refuses them), lines that
are not JSON (a process stopped mid-write), and other models' records. When nothing can be
exported, nothing is written.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

TEXT_TASK = "text-classification"
IMAGE_TASK = "image-classification"
CSV_COLUMNS = ["text", "label", "suggested_label", "suggested_probability", "model", "version", "time",
               "request_id", "index"]
# Pillow's name for each format the service accepts -> the suffix training.image_data reads it by.
IMAGE_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}

README = """These images come from the payload log of the service, for training {model}.

Each image sits in the folder of the label the MODEL SUGGESTED ({model}, the version in
suggested.json): these labels are predictions, not ground truth. Before training on them,
look through every class folder, move each image whose label is wrong into the right folder
(or delete it), in train/ and test/ alike. suggested.json lists each image with the label and
probability the model gave it, where and when it was served.

Then train:  python -m training.image_classifier --data {out}
"""


class ExportError(ValueError):
    """The export cannot be made as asked; the message says what to change."""


@dataclass
class Summary:
    """What an export wrote and what it could not, for the command's report."""

    model: str
    out: Path
    task: str | None = None
    exported: int = 0
    duplicates: int = 0
    hash_only: int = 0  # texts logged with SERVICE_PAYLOAD_LOG_TEXTS=hash
    without_bytes: int = 0  # images logged with SERVICE_PAYLOAD_LOG_IMAGES=false
    blank: int = 0
    too_long: int = 0
    not_images: int = 0
    not_json: int = 0
    other_models: Counter[str] = field(default_factory=Counter)

    def report(self) -> str:
        kind = "images" if self.task == IMAGE_TASK else "texts"
        lines = [f"{self.exported} {kind} of {self.model} exported to {self.out}"]
        for count, why in (
            (self.duplicates, "repeats of an input already exported"),
            (self.hash_only, "texts logged as their sha256 only (SERVICE_PAYLOAD_LOG_TEXTS=hash): not exportable"),
            (self.without_bytes, "images logged without their bytes (SERVICE_PAYLOAD_LOG_IMAGES=false): "
                                 "not exportable"),
            (self.blank, "blank texts: training refuses them"),
            (self.too_long, f"texts longer than {csv.field_size_limit():,} characters: a CSV reader refuses them"),
            (self.not_images, "images Pillow cannot read"),
            (self.not_json, "lines that are not JSON (a process stopped mid-write?)"),
        ):
            if count:
                lines.append(f"  skipped {count}: {why}")
        if self.other_models:
            others = ", ".join(f"{name} ({count})" for name, count in sorted(self.other_models.items()))
            lines.append(f"  records of other models, left out: {others}")
        if self.task == TEXT_TASK and self.exported:
            lines.append("Next: fill the empty `label` column of every row (suggested_label is the model's guess; "
                         "training refuses a row without a label, so delete rows you cannot label), then\n"
                         f"  python -m training.sentiment --data {self.out} --text-column text --label-column label")
        elif self.task == IMAGE_TASK and self.exported:
            lines.append(f"Next: review the class folders (see {self.out / 'README.txt'}), then\n"
                         f"  python -m training.image_classifier --data {self.out}")
        return "\n".join(lines)


def export(logs: Iterable[Path], model: str, out: Path, test_fraction: float = 0.2) -> Summary:
    """Export `model`'s records in `logs` (files, or folders of *.jsonl files) to `out` (see the module docstring)."""
    if not 0 < test_fraction < 1:
        raise ExportError(f"--test-fraction must be between 0 and 1, got {test_fraction}")
    files = log_files(logs)
    summary = Summary(model, out)
    records = _records_of(model, read_records(files, summary), summary)
    first = next(records, None)
    if first is None:
        found = ", ".join(sorted(summary.other_models)) or "none"
        raise ExportError(f"no records of model {model!r} in {len(files)} log file(s); models found: {found}")
    summary.task = first.get("task")
    if summary.task == TEXT_TASK:
        _refuse_existing(out, folder=False)
        _export_texts(_chain(first, records), out, summary)
    elif summary.task == IMAGE_TASK:
        _refuse_existing(out, folder=True)
        _export_images(_chain(first, records), out, test_fraction, summary)
    else:
        raise ExportError(f"records of {model!r} have task {summary.task!r}; only {TEXT_TASK} and "
                          f"{IMAGE_TASK} can be exported")
    return summary


def log_files(logs: Iterable[Path]) -> list[Path]:
    """The log files named: each file as given, each folder's *.jsonl files by name."""
    files: list[Path] = []
    for path in logs:
        if path.is_dir():
            files += sorted(path.glob("*.jsonl"))
        elif path.is_file():
            files.append(path)
        else:
            raise ExportError(f"{path}: no such file or folder")
    if not files:
        raise ExportError("no *.jsonl files in " + ", ".join(map(str, logs)))
    return files


def read_records(files: Iterable[Path], summary: Summary) -> Iterator[dict[str, Any]]:
    """Every record in `files`; a line that is not a JSON object is counted and skipped."""
    for path in files:
        with open(path, "rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:  # also UnicodeDecodeError: a line cut inside a character
                    record = None
                if isinstance(record, dict):
                    yield record
                else:
                    summary.not_json += 1


def _records_of(model: str, records: Iterator[dict[str, Any]], summary: Summary) -> Iterator[dict[str, Any]]:
    for record in records:
        if record.get("model") == model:
            yield record
        else:
            summary.other_models[str(record.get("model"))] += 1


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def _refuse_existing(out: Path, folder: bool) -> None:
    # Never write over an export: it may hold hours of someone's labelling.
    if folder and out.is_dir() and not any(out.iterdir()):
        return
    if out.exists():
        raise ExportError(f"{out} exists; give a new --out" + (" (or an empty folder)" if folder else ""))


def _same_task(record: dict[str, Any], summary: Summary) -> None:
    if record.get("task") != summary.task:
        raise ExportError(f"records of {summary.model!r} have two tasks: {summary.task!r} and {record.get('task')!r}")


def _export_texts(records: Iterator[dict[str, Any]], out: Path, summary: Summary) -> None:
    seen: set[str] = set()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "x", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for record in records:
            _same_task(record, summary)
            text = record.get("text")
            if text is None:
                summary.hash_only += 1
            elif not text.strip():
                summary.blank += 1
            elif len(text) > csv.field_size_limit():  # Python's own reader, training's among them, stops there
                summary.too_long += 1
            elif record["text_sha256"] in seen:
                summary.duplicates += 1
            else:
                seen.add(record["text_sha256"])
                label = record["prediction"]
                writer.writerow([text, "", label, record["probabilities"][label], record["model"],
                                 record["version"], record["time"], record["request_id"], record["index"]])
                summary.exported += 1
    if not summary.exported:
        out.unlink()  # a header alone would only be in the way of the next export


def _export_images(records: Iterator[dict[str, Any]], out: Path, test_fraction: float, summary: Summary) -> None:
    # Every image goes to train/<label>/ first; once each label's images are known, a share moves to test/.
    listed: dict[str, dict[str, Any]] = {}  # sha256 -> what suggested.json says of it
    for record in records:
        _same_task(record, summary)
        encoded = record.get("image_base64")
        sha256 = record["image_sha256"]
        if encoded is None:
            summary.without_bytes += 1
            continue
        if sha256 in listed:
            summary.duplicates += 1
            continue
        data = base64.b64decode(encoded)
        try:
            with Image.open(io.BytesIO(data), formats=list(IMAGE_SUFFIXES)) as image:
                suffix = IMAGE_SUFFIXES[str(image.format)]
        except (UnidentifiedImageError, OSError):
            summary.not_images += 1
            continue
        label = _folder_name(record["prediction"])
        path = Path("train") / label / f"{sha256[:16]}{suffix}"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
        listed[sha256] = {"path": path.as_posix(), "suggested_label": record["prediction"],
                          "probability": record["probabilities"][record["prediction"]],
                          "version": record["version"], "filename": record.get("filename"),
                          "time": record["time"], "request_id": record["request_id"], "index": record["index"]}
        summary.exported += 1
    if not listed:
        return
    by_label: dict[str, list[str]] = {}
    for sha256, entry in sorted(listed.items()):
        by_label.setdefault(Path(entry["path"]).parent.name, []).append(sha256)
    for label, members in by_label.items():
        count = len(members)
        held_out = min(count - 1, max(1, round(test_fraction * count))) if count >= 2 else 0
        for sha256 in members[:held_out]:
            moved = Path("test") / label / Path(listed[sha256]["path"]).name
            (out / moved).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(out / listed[sha256]["path"], out / moved)
            listed[sha256]["path"] = moved.as_posix()
    note = "The labels are the model's suggestions, not ground truth: review every folder before training."
    (out / "suggested.json").write_text(json.dumps(
        {"note": note, "model": summary.model, "images": sorted(listed.values(), key=lambda e: e["path"])},
        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.txt").write_text(README.format(model=summary.model, out=out), encoding="utf-8")


def _folder_name(label: str) -> str:
    # Labels come from a model card, but the log is a file anyone could edit: a label must not
    # leave the export's folder, and training skips hidden folders.
    if not label or label.startswith(".") or "/" in label or "\\" in label or "\0" in label:
        raise ExportError(f"label {label!r} cannot be a folder name")
    return label
