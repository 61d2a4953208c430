"""One model version, loaded once, scoring batches of rows: the per-batch work of offline scoring.

`BatchScorer` opens the version as the service does (service.core.loading.open_version: the same
SavedModel checks, the same runtime, the version's own handler), and scores a batch in three steps
that a pipeline can run on different threads:

- `prepare`: each row decoded by the handler (texts as the API checks them, images by the same
  decoder as /classify-image), the rows that cannot be decoded set aside with the handler's message;
- `predict`: one model call for the rest (if it fails, each row alone, so that only the rows that
  fail on their own get an error);
- `results`: the handler's answer for each row (`Handler.results`, as the API words it) as
  columns: `label`, `probability`, one `probability_<label>` per class, and `error`.

`__call__` runs the three on one batch of columns, which is the shape Ray Data's `map_batches`
gives a callable class (a later step runs the same job there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contract.errors import ArtifactError
from service.core.errors import ServiceError
from service.core.handlers import EncodedImage, ImageHandler
from service.core.loading import open_version
from service.score.errors import BadRow
from service.score.outputs import probability_columns, scored_columns
from service.settings import Settings


@dataclass(slots=True)
class Prepared:
    """A batch after decoding: the model rows of the rows that decoded, and why the others did not."""

    size: int  # rows in the batch, decoded or not
    kept: list[int]  # positions of the rows that go to the model
    items: list[Any]  # those rows' inputs, for the handler's answer
    rows: Any  # their model rows, joined (None when there are none)
    errors: dict[int, str] = field(default_factory=dict)  # position -> message


@dataclass(slots=True)
class Outputs:
    """The model's output rows for a batch's kept rows (None when none), and the rows the model failed on."""

    probabilities: np.ndarray | None
    failed: dict[int, str] = field(default_factory=dict)  # index into `kept` -> message


class BatchScorer:
    """Scores batches of rows with one version of one model."""

    def __init__(self, version_dir: Path, settings: Settings | None = None, *, warm_up_rows: int = 64,
                 text_column: str = "text") -> None:
        self.settings = settings or Settings()
        opened = open_version(version_dir, self.settings)
        self.model, self.handler, self.runtime = opened.saved_model, opened.handler, opened.runtime
        self._model_call = opened.predict  # on the version's runtime, as the service runs it
        card = self.model.card
        self.name, self.version, self.labels = card.name, card.version, list(card.labels)
        self._label_index = {label: index for index, label in enumerate(self.labels)}
        self.kind = "image" if isinstance(self.handler, ImageHandler) else "text"
        self.text_column = text_column  # the column `__call__` reads texts from
        self.columns = scored_columns(self.labels)
        try:  # as the service does before a version takes traffic: builds the kernels, proves it answers
            self._model_call(self.handler.warm_up_rows(warm_up_rows))
        except Exception as exc:
            raise ArtifactError(f"{version_dir}: the warm-up batch failed ({exc})") from exc

    # -- the three steps ------------------------------------------------------------------------

    def prepare(self, items: Sequence[Any], first_row: int = 0) -> Prepared:
        """Decode each row (texts, `EncodedImage`s or `BadRow`s); `first_row` numbers them in messages."""
        kept, keep, decoded, errors = [], [], [], {}
        for offset, item in enumerate(items):
            try:
                decoded.append(self._decode(item, first_row + offset))
            except _RowError as exc:
                errors[offset] = str(exc)
                continue
            kept.append(offset)
            keep.append(item)
        rows = self.handler.prepare(decoded).rows if decoded else None
        return Prepared(len(items), kept, keep, rows, errors)

    def predict(self, prepared: Prepared, first_row: int = 0) -> Outputs:
        """One model call for the batch's decoded rows; if it fails, one call per row."""
        if not prepared.kept:
            return Outputs(None)
        try:
            return Outputs(self._model_call(prepared.rows))
        except Exception as exc:
            if len(prepared.kept) == 1:
                return Outputs(None, {0: self._failure(first_row + prepared.kept[0], exc)})
        outputs = np.zeros((len(prepared.kept), len(self.labels)), dtype=np.float32)
        failed = {}
        for index, position in enumerate(prepared.kept):
            try:
                outputs[index] = self._model_call(prepared.rows[index : index + 1])[0]
            except Exception as exc:
                failed[index] = self._failure(first_row + position, exc)
        return Outputs(outputs, failed)

    def results(self, prepared: Prepared, outputs: Outputs) -> dict[str, list[Any]]:
        """The batch's answers as columns, one value per row, in order (None where a row has an error)."""
        size = prepared.size
        columns: dict[str, list[Any]] = {name: [None] * size for name in self.columns}
        errors = columns["error"]
        for position, message in prepared.errors.items():
            errors[position] = message
        answered = [i for i in range(len(prepared.kept)) if i not in outputs.failed]
        for index, message in outputs.failed.items():
            errors[prepared.kept[index]] = message
        if not answered:
            return columns
        probabilities = outputs.probabilities
        assert probabilities is not None
        if len(answered) < len(prepared.kept):
            probabilities = probabilities[answered]
        items = [prepared.items[i] for i in answered]
        # The label as the API words it (the handler's answer); every class's probability straight from
        # the output rows, which are the numbers the API's answers carry.
        answers = self.handler.results(probabilities, items, top_k=1)
        label_column, probability_column = columns["label"], columns["probability"]
        per_label = [columns[name] for name in probability_columns(self.labels)]
        for index, answer, row in zip(answered, answers, probabilities.tolist(), strict=True):
            position = prepared.kept[index]
            label_column[position] = answer["label"]
            probability_column[position] = row[self._label_index[answer["label"]]]
            for column, probability in zip(per_label, row, strict=True):
                column[position] = probability
        return columns

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Score one batch of columns (Ray Data's `map_batches` shape): the input's columns, then the answers.

        Texts come from `text_column`; images from `bytes`, named by `path` when there is one
        (what Ray Data's `read_binary_files(include_paths=True)` gives). Image bytes are not passed on.
        """
        if self.kind == "image":
            paths = batch.get("path")
            items: list[Any] = [EncodedImage(bytes(data), None if paths is None else str(paths[i]))
                                for i, data in enumerate(batch["bytes"])]
        else:
            items = [None if text is None else str(text) for text in batch[self.text_column]]
        prepared = self.prepare(items)
        scored = self.results(prepared, self.predict(prepared))
        passed = {name: list(values) for name, values in batch.items() if name != "bytes"}
        return passed | scored | {"model": [self.name] * len(items), "version": [self.version] * len(items)}

    # -- one row ------------------------------------------------------------------------------

    def _decode(self, item: Any, row: int) -> Any:
        if isinstance(item, BadRow):
            raise _RowError(item.message)
        if self.kind == "image":
            try:
                return self.handler.decode(item, row)
            except ServiceError as exc:  # the handler's own words, naming the image
                raise _RowError(str(exc)) from None
        return self.handler.decode(self._checked_text(item, row), row)

    def _checked_text(self, text: Any, row: int) -> str:
        """A text as /sentiment would take it (a string, no NUL, at most SERVICE_MAX_TEXT_CHARS), and not empty."""
        if text is None:
            raise _RowError(f"row {row}: the text is missing (null)")
        if not isinstance(text, str):
            raise _RowError(f"row {row}: the text is not a string ({type(text).__name__})")
        if not text.strip():
            raise _RowError(f"row {row}: the text is empty")
        if "\x00" in text:
            raise _RowError(f"row {row}: the text contains a NUL character")
        limit = self.settings.max_text_chars
        if len(text) > limit:
            raise _RowError(f"row {row}: the text is {len(text)} characters long; the limit is {limit} "
                            "(SERVICE_MAX_TEXT_CHARS)")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # bytes the input's encoding could not decode, kept as escapes
                byte = ord(text[exc.start]) & 0xFF
                raise _RowError(f"row {row}: the text is not valid in the input's encoding (byte 0x{byte:02x} "
                                f"at character {exc.start})") from None
        return text

    def _failure(self, row: int, exc: Exception) -> str:
        # TensorFlow's messages wrap the one line that says what failed in lines about where.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        said = [line for line in lines if not line.startswith(_TF_FRAMING)] or lines
        detail = f"{type(exc).__name__}: {said[-1][:300]}" if said else type(exc).__name__
        return f"row {row}: the model call failed ({detail})"


_TF_FRAMING = ("Graph execution error", "Detected at node", "<stack traces", "[[")


class _RowError(Exception):
    """One row that cannot be scored; the message names it."""
