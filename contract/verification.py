"""The verification sample: held-out inputs, their labels and the float32 model's outputs on them,
stored beside a version's SavedModel so that a faster runtime can be checked against it.

Training writes one with each new version (training/verification_sample.py), and
`python -m training.republish` gives an existing SavedModel one in a new version. Its inputs
come from the held-out split the card's figures were measured on: never training data, and
never used to calibrate a quantized runtime (they are what such a runtime is judged on).

The file, `verification.npz` in the version folder (`numpy.savez_compressed`; no pickled
objects, so it loads with `allow_pickle=False`):

    images         uint8   [n, H, W, 3]   image models: the model's own input, H x W as the card says
    text_utf8      uint8   [total bytes]  text models: every text's UTF-8 bytes, one after another
    text_offsets   int64   [n + 1]        text i is text_utf8[text_offsets[i]:text_offsets[i + 1]]
    labels         int64   [n]            the true class, an index into the card's labels
    probabilities  float32 [n, classes]   the float32 TensorFlow model's outputs on exactly these inputs

The card declares it (contract.card.VerificationInfo), for example:

    "verification": {"file": "verification.npz", "count": 2000, "split": "test",
                     "source": "2,000 of the 10,000 inputs of the test split ..., held out ...",
                     "sha256": "<of the file>", "reference_runtime": "tensorflow float32",
                     "reference_accuracy": 0.9035, "reference_ece": 0.0121,   # on the sample
                     "split_size": 10000, "selection_seed": 0}                # which rows (training)

`compare` scores a candidate runtime's outputs against the reference on the sample, and
`Agreement.failures` names each acceptance criterion it misses (`THRESHOLDS`). The expected
calibration error here is the one training reports in cards too (training/calibration.py).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from contract.errors import ArtifactError

if TYPE_CHECKING:
    from contract.card import ModelCard

SAMPLE_FILE = "verification.npz"
REFERENCE_RUNTIME = "tensorflow float32"
IMAGE_KEYS = frozenset({"images", "labels", "probabilities"})
TEXT_KEYS = frozenset({"text_utf8", "text_offsets", "labels", "probabilities"})

# --- expected calibration error ------------------------------------------------------------------

ECE_BINS = 15
ECE_DEFINITION = (
    f"expected calibration error, top-1 confidence, {ECE_BINS} equal-width bins on [0, 1] "
    "(a confidence of exactly 1 in the last bin), bins weighted by their share of answers"
)


@dataclass(frozen=True)
class Reliability:
    """Per-bin figures of a reliability diagram: answers, accuracy and mean confidence."""

    edges: np.ndarray  # bins + 1 edges on [0, 1]
    counts: np.ndarray  # answers whose top-1 confidence falls in each bin
    accuracy: np.ndarray  # share right in each bin (0 where the bin is empty)
    confidence: np.ndarray  # mean top-1 confidence in each bin (0 where the bin is empty)

    @property
    def ece(self) -> float:
        total = self.counts.sum()
        return float(np.sum(self.counts / total * np.abs(self.accuracy - self.confidence))) if total else 0.0


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    """Each answer in the bin of its top-1 probability: equal-width bins on [0, 1], 1.0 in the last."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == np.asarray(labels)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    safe = np.maximum(counts, 1)
    return Reliability(
        np.linspace(0.0, 1.0, bins + 1),
        counts,
        np.bincount(index, weights=right, minlength=bins) / safe,
        np.bincount(index, weights=confidence, minlength=bins) / safe,
    )


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-1 ECE: the mean over `bins` equal-width bins of |accuracy - mean confidence|, weighted by
    each bin's share of the answers (ECE_DEFINITION; Guo et al. 2017)."""
    return reliability(probabilities, labels, bins).ece


# --- comparing a runtime with the reference ------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """What a candidate runtime must keep, relative to the float32 reference on the sample."""

    min_top1_agreement: float = 0.995  # share of inputs whose top-1 class is the reference's
    max_accuracy_drop: float = 0.003  # 0.3 percentage points
    max_ece_increase: float = 0.01


THRESHOLDS = Thresholds()
# Figures are ratios of counts; a candidate exactly at a threshold passes despite float rounding.
_SLACK = 1e-9


@dataclass(frozen=True)
class Agreement:
    """A candidate runtime's outputs against the reference's, on the same inputs and labels."""

    count: int
    top1_agreement: float  # share of inputs where both pick the same class
    reference_accuracy: float
    candidate_accuracy: float
    reference_ece: float
    candidate_ece: float
    max_abs_difference: float  # largest |candidate - reference| over every probability

    def failures(self, thresholds: Thresholds = THRESHOLDS) -> list[str]:
        """One sentence, with its figures, per criterion the candidate misses ([] when it passes)."""
        failed = []
        if self.top1_agreement < thresholds.min_top1_agreement - _SLACK:
            failed.append(f"top-1 agreement {self.top1_agreement:.2%} < {thresholds.min_top1_agreement:.1%}")
        drop = self.reference_accuracy - self.candidate_accuracy
        if drop > thresholds.max_accuracy_drop + _SLACK:
            failed.append(
                f"accuracy {self.candidate_accuracy:.2%} is {100 * drop:.2f} points below the reference's "
                f"{self.reference_accuracy:.2%} (at most {100 * thresholds.max_accuracy_drop:.1f} allowed)"
            )
        increase = self.candidate_ece - self.reference_ece
        if increase > thresholds.max_ece_increase + _SLACK:
            failed.append(
                f"ECE {self.candidate_ece:.4f} is {increase:.4f} above the reference's {self.reference_ece:.4f} "
                f"(at most {thresholds.max_ece_increase} allowed)"
            )
        return failed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> Agreement:
    """How closely `candidate` probabilities [n, classes] follow `reference` on inputs labelled `labels`.

    Top-1 agreement and accuracy count argmax classes; ECE is the top-1 expected calibration
    error with `bins` equal-width bins (`expected_calibration_error`).
    """
    reference, candidate, labels = np.asarray(reference), np.asarray(candidate), np.asarray(labels)
    if reference.ndim != 2 or reference.shape != candidate.shape or labels.shape != reference.shape[:1]:
        raise ValueError(
            f"compare needs reference and candidate [n, classes] and labels [n]; got {reference.shape}, "
            f"{candidate.shape} and {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("compare needs at least one input")
    reference_top1, candidate_top1 = reference.argmax(axis=1), candidate.argmax(axis=1)
    difference = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    return Agreement(
        count=len(labels),
        top1_agreement=float(np.mean(reference_top1 == candidate_top1)),
        reference_accuracy=float(np.mean(reference_top1 == labels)),
        candidate_accuracy=float(np.mean(candidate_top1 == labels)),
        reference_ece=expected_calibration_error(reference, labels, bins),
        candidate_ece=expected_calibration_error(candidate, labels, bins),
        max_abs_difference=float(difference.max()),
    )


# --- the sample ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationSample:
    """A version's sample, read and checked against its card: `inputs` (uint8 images, or texts),
    `labels` int64 [n] and the float32 reference `probabilities` [n, classes]."""

    inputs: np.ndarray | list[str]
    labels: np.ndarray
    probabilities: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int, stop: int) -> np.ndarray | list[bytes]:
        """Inputs start..stop as the model takes them: images as they are, texts as UTF-8 bytes."""
        if isinstance(self.inputs, np.ndarray):
            return self.inputs[start:stop]
        return [text.encode("utf-8") for text in self.inputs[start:stop]]

    def batches(self, size: int) -> Iterator[np.ndarray | list[bytes]]:
        """Every input, in order, as model-ready batches of at most `size`."""
        if size < 1:
            raise ValueError(f"batch size must be at least 1, got {size}")
        for start in range(0, len(self), size):
            yield self.rows(start, start + size)

    def compare(self, candidate: np.ndarray, bins: int = ECE_BINS) -> Agreement:
        """A candidate runtime's probabilities on every input (in order) against the reference's."""
        return compare(self.probabilities, candidate, self.labels, bins)


def write_sample(
    version_dir: Path,
    inputs: np.ndarray | Sequence[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    *,
    split: str,
    source: str,
) -> dict[str, Any]:
    """Write `verification.npz` into `version_dir`; returns the card's `verification` section.

    `inputs` are uint8 images [n, H, W, 3] or n texts; `probabilities` are the float32 model's
    outputs on exactly those inputs; `split` names the held-out split they came from, `source`
    says in a sentence which inputs they are and why they are held out.
    """
    from contract.card import VerificationInfo

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    n = len(labels)
    if n == 0:
        raise ValueError("a verification sample needs at least one input")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers [n], got {labels.dtype} {labels.shape}")
    if probabilities.shape[:1] != (n,) or probabilities.ndim != 2 or probabilities.dtype != np.float32:
        raise ValueError(
            f"probabilities must be float32 [{n}, classes], got {probabilities.dtype} {probabilities.shape}"
        )
    if labels.min() < 0 or labels.max() >= probabilities.shape[1]:
        classes = probabilities.shape[1]
        raise ValueError(f"labels must index the {classes} classes, found {labels.min()}..{labels.max()}")
    arrays: dict[str, np.ndarray] = {"labels": labels.astype(np.int64), "probabilities": probabilities}
    if isinstance(inputs, np.ndarray) and inputs.dtype != object:
        if inputs.dtype != np.uint8 or inputs.ndim != 4 or inputs.shape[0] != n or inputs.shape[3] != 3:
            raise ValueError(f"images must be uint8 [{n}, H, W, 3], got {inputs.dtype} {inputs.shape}")
        arrays["images"] = inputs
    else:
        texts = list(inputs)
        if len(texts) != n or not all(isinstance(text, str) for text in texts):
            raise ValueError(f"texts must be {n} strings, got {len(texts)} items")
        encoded = [text.encode("utf-8") for text in texts]
        arrays["text_utf8"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        arrays["text_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in encoded])]).astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    (Path(version_dir) / SAMPLE_FILE).write_bytes(data)
    section = {
        "file": SAMPLE_FILE,
        "count": n,
        "split": split,
        "source": source,
        "sha256": hashlib.sha256(data).hexdigest(),
        "reference_runtime": REFERENCE_RUNTIME,
        "reference_accuracy": round(float(np.mean(probabilities.argmax(axis=1) == labels)), 5),
        "reference_ece": round(expected_calibration_error(probabilities, labels), 5),
    }
    VerificationInfo.model_validate(section)
    return section


def read_sample(version_dir: Path, card: ModelCard) -> VerificationSample | None:
    """The sample the card declares, checked against the card; None when it declares none.

    A missing file, a different sha256, or arrays whose names, dtypes, shapes, count or classes
    disagree with the card (images of the card's height and width, texts valid UTF-8) are an
    ArtifactError naming the folder.
    """
    info = card.verification
    if info is None:
        return None
    path = Path(version_dir) / info.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{version_dir}: cannot read the card's verification sample {info.file} ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        raise ArtifactError(f"{version_dir}: {info.file} has sha256 {digest}, the card says {info.sha256}")

    def broken(what: str) -> ArtifactError:
        return ArtifactError(f"{version_dir}: {info.file}: {what}")

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            arrays = {key: saved[key] for key in saved.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise broken(f"not a readable .npz without pickled objects ({exc})") from None

    task, n, classes = card.task, info.count, len(card.labels)
    input_name = card.kind.input_name
    expected = {"images": IMAGE_KEYS, "text": TEXT_KEYS}.get(input_name)
    if expected is None:
        raise broken(f"no sample format for task {task!r}")
    if set(arrays) != expected:
        raise broken(f"arrays {sorted(arrays)}, a {task} sample has {sorted(expected)}")

    def check(key: str, dtype: type, shape: tuple[int | None, ...]) -> np.ndarray:
        array = arrays[key]
        same = array.ndim == len(shape) and all(
            want in (None, have) for have, want in zip(array.shape, shape, strict=True)
        )
        if array.dtype != dtype or not same:
            want = " x ".join("*" if d is None else str(d) for d in shape)
            raise broken(f"{key} is {array.dtype} {list(array.shape)}, the card needs {np.dtype(dtype)} [{want}]")
        return array

    labels = check("labels", np.int64, (n,))
    probabilities = check("probabilities", np.float32, (n, classes))
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise broken(f"labels must index the card's {classes} labels, found {labels.min()}..{labels.max()}")
    if not np.isfinite(probabilities).all():
        raise broken("probabilities hold NaN or infinite values")
    inputs: np.ndarray | list[str]
    if input_name == "images":
        spec = card.input
        inputs = check("images", np.uint8, (n, spec.height, spec.width, 3))  # type: ignore[attr-defined]
    else:
        blob = check("text_utf8", np.uint8, (None,)).tobytes()
        offsets = check("text_offsets", np.int64, (n + 1,))
        if offsets[0] != 0 or offsets[-1] != len(blob) or np.any(np.diff(offsets) < 0):
            raise broken(f"text_offsets must rise from 0 to the {len(blob)} bytes of text_utf8")
        inputs = []
        for i in range(n):
            try:
                inputs.append(blob[offsets[i] : offsets[i + 1]].decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise broken(f"text {i} is not valid UTF-8 ({exc.reason})") from None
    return VerificationSample(inputs, labels, probabilities)
