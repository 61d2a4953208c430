"""Publish an existing version's SavedModel again, unchanged, as the next version with what its card lacks.

    python -m training.republish artifacts/cifar10-cnn --from-version 4
    python -m training.republish artifacts/sentiment-tweets --from-version 5 --datasets ../shared/datasets

Published version folders are never edited, so a version from before a part of the card existed
gets it by being published again. What a republish adds is what version V lacks of:

- a verification sample (`verification`, training/verification_sample.py);
- explanations: for a text model, the card's `input.tokenizer` (the spec of contract.tokens whose
  rules are the ones V's graph runs, keeping the end of long texts the card's `keeps` names;
  load_model checks it), without which the service cannot explain its answers; for every model,
  the faithfulness of its explanations on held-out inputs (`explanations`, training/faithfulness.py).

A version that lacks neither is refused: there is nothing to add. The new version's SavedModel
(saved_model.pb, variables/, assets/, fingerprint.pb), its verification sample if it had one,
and the files describing its evaluation (plots, test_ids.txt) are version V's, copied byte for
byte; its card is V's card with the new version number, a `republished_from` section (V, the
copied files and their sha256, what this republish adds, and this run's command, time, machine
and commit) and the parts added. Nothing is retrained.

The sample's inputs and the faithfulness figures' come from the held-out split V's evaluation
figures were measured on, rebuilt exactly as the training job built it from the training
command V's card records: the dataset is found by its file name under --datasets (or given
with --data) and must have the card's sha256; images are decoded by the training job's
reader (contract.pixels, cached under .cache/image-data like a training run's), texts read
straight from the archive or CSV; the labels, split size, the split's description, per-class
counts and test_ids.txt must all be the card's. The sample's reference outputs, and the
faithfulness figures, are the staged copy's own, before it is renamed into place
(contract.publish).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from contract.card import CARD_FILE, ModelCard, read_card, write_card
from contract.errors import ArtifactError
from contract.kinds import TextInput
from contract.publish import staged_version
from contract.savedmodel import load_model
from contract.speed import machine_description
from contract.tokens import TokenizerSpec, rules_in_graph, spec_for_rules
from training import common, faithfulness
from training.verification_sample import DEFAULT_COUNT, write_verification_sample

MODULE = "training.republish"
DEFAULT_DATASETS = common.REPO_ROOT.parent / "shared" / "datasets"
IMAGE_JOB, TEXT_JOB = "training.image_classifier", "training.sentiment"
# What a republish can add, in `republished_from.reason`'s words.
VERIFICATION = "a verification sample"
TOKENIZER = "the tokenizer its graph runs (input.tokenizer), so that the service can explain its answers word by word"
EXPLANATIONS = "the faithfulness of its explanations on held-out inputs (explanations)"
KEEPS: dict[str, Literal["head", "tail"]] = {"the head of longer texts": "head", "the tail of longer texts": "tail"}


class RepublishError(SystemExit):
    """Why a version cannot be republished; the message says what to fix."""


@dataclass(frozen=True)
class HeldOutSplit:
    """The held-out split a card's figures were measured on, rebuilt from its dataset."""

    inputs: np.ndarray | list[str]
    labels: np.ndarray
    split: str  # its short name: "test"
    description: str  # what it is, in words, for the sample's `source`
    held_out: str  # why the model never learned from it
    dataset: Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "model_dir", type=Path, metavar="MODEL_DIR", help="the model's folder, e.g. artifacts/cifar10-cnn"
    )
    parser.add_argument(
        "--from-version", type=int, required=True, metavar="V", help="the published version whose SavedModel is reused"
    )
    parser.add_argument(
        "--count",
        type=int,
        default=DEFAULT_COUNT,
        help="held-out inputs in the verification sample, if V has none (all of them if the split is smaller)",
    )
    parser.add_argument(
        "--faithfulness-count",
        type=int,
        default=faithfulness.DEFAULT_COUNT,
        help="held-out inputs the explanations' faithfulness is measured on, if V's card has none",
    )
    parser.add_argument(
        "--datasets",
        type=Path,
        default=DEFAULT_DATASETS,
        help="folder searched for the dataset the card names (by file name, checked by its sha256)",
    )
    parser.add_argument("--data", type=Path, help="the dataset file or folder itself, instead of searching --datasets")
    return parser


def main(argv: list[str] | None = None) -> Path:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 1 or args.faithfulness_count < 1:
        parser.error("--count and --faithfulness-count must be at least 1")
    command = common.command_line(MODULE) if argv is None else shlex.join(["python", "-m", MODULE, *argv])
    target = republish(
        args.model_dir,
        args.from_version,
        args.count,
        args.datasets,
        args.data,
        command,
        started,
        args.faithfulness_count,
    )
    print(f"wrote {target} in {time.perf_counter() - started:.1f}s", flush=True)
    return target


def republish(
    model_dir: Path,
    from_version: int,
    count: int,
    datasets: Path,
    data: Path | None,
    command: str,
    started: float | None = None,
    faithfulness_count: int = faithfulness.DEFAULT_COUNT,
) -> Path:
    """Publish `model_dir`'s next version: version `from_version`'s SavedModel and evaluation files,
    copied unchanged, with what its card lacks (module docstring). Returns the new folder."""
    started = time.perf_counter() if started is None else started
    source = model_dir / str(from_version)
    card = read_card(source)  # ArtifactError naming the folder if it is not a published version
    raw = json.loads((source / CARD_FILE).read_text(encoding="utf-8"))
    # Every check before anything is staged.
    held_out = held_out_split(card, raw, source, datasets, data)
    add_verification, add_explanations = card.verification is None, "explanations" not in raw
    if not (add_verification or add_explanations):
        raise RepublishError(f"{source} has a verification sample and explanations already: nothing to add")
    tokenizer = graph_tokenizer(source, card) if add_explanations and _lacks_tokenizer(card) else None
    added, sections = [], []  # what the reason and the card's description say was added
    if add_verification:
        added.append(VERIFICATION)
        sections.append("'verification'")
    if tokenizer is not None:
        added.append(TOKENIZER)
        sections.append("input.tokenizer")
    if add_explanations:
        added.append(EXPLANATIONS)
        sections.append("'explanations'")
    with staged_version(model_dir) as staged:
        files = copy_unchanged(source, staged.path, {CARD_FILE})
        new_card = {**raw, "version": staged.version}
        if tokenizer is not None:
            new_card["input"] = {**raw["input"], "tokenizer": tokenizer.model_dump()}
        copied = "the SavedModel, its verification sample" if not add_verification else "the SavedModel"
        new_card["republished_from"] = {
            "version": from_version,
            "saved_model": "unchanged",
            "reason": "adds " + "; ".join(added),
            "what": f"{copied} and the files describing its evaluation are version {from_version}'s, copied byte "
            f"for byte (sha256 below); this card is its card with this section and {', '.join(sections)} added",
            "files": files,
            "command": command,
            "seconds": 0.0,  # provisional: the time of the whole run is written below
            "machine": machine_description(),
            "git_commit": common.git_commit(),
        }
        write_card(staged.path, new_card)  # the contract needs a card before the folder loads
        model = staged.load()  # checks the declared tokenizer against the graph, before it is measured with
        if add_verification:
            new_card["verification"] = write_verification_sample(
                staged.path,
                model,
                held_out.inputs,
                held_out.labels,
                count=count,
                split=held_out.split,
                split_description=held_out.description,
                held_out=held_out.held_out,
            )
        if add_explanations:
            new_card["explanations"] = faithfulness.explanations_section(
                model,
                held_out.inputs,
                split=held_out.split,
                split_description=held_out.description,
                count=faithfulness_count,
            )
        new_card["republished_from"]["seconds"] = round(time.perf_counter() - started, 1)
        write_card(staged.path, new_card)
    return staged.target


def copy_unchanged(source: Path, target: Path, skip: set[str]) -> dict[str, str]:
    """Copy every file and folder of `source` but `skip` into `target`, byte for byte; returns
    each copied file's relative path -> sha256, checked to be the same in both folders."""
    files: dict[str, str] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)  # assets/ may be empty, and still copied
            continue
        if relative in skip:
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)
        digest = common.sha256_file(path)
        if common.sha256_file(target / relative) != digest:
            raise ArtifactError(f"{target / relative}: the copy differs from {path}")
        files[relative] = digest
    if "saved_model.pb" not in files:
        raise ArtifactError(f"{source}: no saved_model.pb to republish")
    return files


# --- the tokenizer a text model's graph runs -----------------------------------------------------


def _lacks_tokenizer(card: ModelCard) -> bool:
    return isinstance(card.input, TextInput) and card.input.tokenizer is None


def graph_tokenizer(source: Path, card: ModelCard) -> TokenizerSpec:
    """The tokenizer spec whose rules are exactly those `source`'s graph runs, keeping the end of long
    texts that the card's `input.keeps` ("the tail of longer texts", as training writes it) names."""
    keeps = getattr(card.input, "keeps", None)
    keep = KEEPS.get(keeps) if isinstance(keeps, str) else None
    if keep is None:
        raise RepublishError(
            f"{source}: the card's input.keeps is {keeps!r}, not 'the head of longer texts' or 'the tail of "
            "longer texts', so which words of a long text the graph keeps is unknown"
        )
    found = rules_in_graph(load_model(source).graph_def())
    spec = spec_for_rules(found, keep)
    if spec is None:
        raise RepublishError(
            f"{source}: no tokenizer spec of contract.tokens runs exactly the {len(found)} rules of its graph, "
            "so the words it sees (and explanations of them) are unknown"
        )
    return spec


# --- the held-out split, rebuilt as the training job built it ------------------------------------


def training_job(card: ModelCard) -> tuple[str, list[str]]:
    """(module, arguments) of the training command the card records."""
    words = shlex.split(card.training.command)
    if "-m" in words and words.index("-m") + 1 < len(words):
        at = words.index("-m")
        module, argv = words[at + 1], words[at + 2 :]
        if module in (IMAGE_JOB, TEXT_JOB):
            return module, argv
    raise RepublishError(
        f"cannot rebuild the held-out split: the card's training command is not a run of {IMAGE_JOB} "
        f"or {TEXT_JOB} ({card.training.command!r})"
    )


def held_out_split(
    card: ModelCard, raw: dict[str, Any], source: Path, datasets: Path, data: Path | None
) -> HeldOutSplit:
    """The test split of the card's training command, from the dataset with the card's sha256."""
    module, argv = training_job(card)
    if module == IMAGE_JOB:
        return _image_split(card, argv, source, datasets, data)
    return _text_split(card, raw, argv, source, datasets, data)


def locate_dataset(
    recorded: Path, datasets: Path, data: Path | None, sha256: str, digest: Callable[[Path], str]
) -> Path:
    """`data` if given, else a file or folder under `datasets` named as the recorded one; either way
    it must have the card's sha256."""
    if data is not None:
        candidates = [data]
    else:
        found = sorted(datasets.rglob(recorded.name)) if datasets.is_dir() else []
        candidates = [datasets / recorded.name, *found]
    seen: list[str] = []
    for candidate in dict.fromkeys(candidates):
        if candidate.exists():
            if digest(candidate) == sha256:
                return candidate
            seen.append(f"{candidate} (another sha256)")
    raise RepublishError(
        f"no dataset with the card's sha256 {sha256}: looked for {recorded.name} "
        + (f"at {data}" if data is not None else f"under {datasets}")
        + (f", found only {', '.join(seen)}" if seen else "")
        + "; pass --data or --datasets"
    )


def _image_split(card: ModelCard, argv: list[str], source: Path, datasets: Path, data: Path | None) -> HeldOutSplit:
    from training import image_classifier
    from training.image_data import dataset_sha256

    options, _ = image_classifier.build_parser().parse_known_args(argv)
    if options.data is None:
        raise RepublishError(f"{source}: the card's training command names no --data")
    path = locate_dataset(options.data, datasets, data, card.dataset.sha256, dataset_sha256)
    spec = card.input
    dataset, _ = image_classifier.read_data(path, spec.height, spec.width)  # type: ignore[attr-defined]
    _check_split(source, card, dataset.labels, dataset.test_labels, "images")
    if card.evaluation["split"] != "test":
        raise RepublishError(f"{source}: the card's figures are on {card.evaluation['split']!r}, not the test split")
    return HeldOutSplit(
        dataset.test_images,
        dataset.test_labels,
        "test",
        f"test split of {dataset.name} ({path.name}; the split the card's evaluation figures were measured on), "
        f"decoded as training decodes it (contract.pixels)",
        "the network never trained on them; test-time flips and the temperature were decided on the "
        "validation split, not on them.",
        path,
    )


def _text_split(
    card: ModelCard, raw: dict[str, Any], argv: list[str], source: Path, datasets: Path, data: Path | None
) -> HeldOutSplit:
    from training import sentiment
    from training.text_data import dataset_sha256

    options, _ = sentiment.build_parser().parse_known_args(argv)
    if options.dataset is None and options.text_column is not None:
        options.dataset = "csv"  # as sentiment.parse_args decides it
    path = locate_dataset(options.data, datasets, data, card.dataset.sha256, dataset_sha256)
    options.data = path
    dataset = sentiment.read_data(options)
    if dataset.test_split != card.evaluation["split"]:
        raise RepublishError(
            f"{source}: the rebuilt test split is {dataset.test_split!r}, the card's figures are on "
            f"{card.evaluation['split']!r}"
        )
    _check_split(source, card, dataset.labels, dataset.test.labels, "rows")
    recorded_count = raw.get("dataset", {}).get("test")
    if recorded_count is not None and recorded_count != len(dataset.test):
        raise RepublishError(f"{source}: the card's test split has {recorded_count} rows, rebuilt {len(dataset.test)}")
    ids_file = source / "test_ids.txt"
    if ids_file.is_file() and ids_file.read_text(encoding="utf-8").split("\n")[:-1] != dataset.test.ids:
        raise RepublishError(f"{source}: the rebuilt test split's ids are not the ones in {ids_file.name}")
    return HeldOutSplit(
        dataset.test.texts,
        dataset.test.labels,
        "test",
        f"test split ({dataset.test_split}) of {path.name}, the split the card's evaluation figures were measured on",
        "the networks, their vocabulary and the baselines never learned from them, and no temperature was "
        "fitted on them.",
        path,
    )


def _check_split(source: Path, card: ModelCard, labels: list[str], test_labels: np.ndarray, unit: str) -> None:
    """The rebuilt split has the card's classes, in the card's order, and the card's per-class counts."""
    if list(labels) != card.labels:
        raise RepublishError(f"{source}: the dataset's classes {labels} are not the card's {card.labels}")
    matrix = card.evaluation.get("confusion_matrix")
    counts = np.bincount(np.asarray(test_labels), minlength=len(labels)).tolist()
    if matrix is not None and [int(sum(row)) for row in matrix] != counts:
        raise RepublishError(
            f"{source}: the rebuilt test split has {counts} {unit} per class, the card's confusion matrix "
            f"{[int(sum(row)) for row in matrix]}"
        )


if __name__ == "__main__":
    main()
