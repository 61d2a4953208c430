"""Loading a version folder: its card, its SavedModel, and the checks that tie the two together.

The signature is `serving_default`, with the one input its kind names (contract.kinds) and
one output, `probabilities`, float32 [batch, len(labels)]; a text card's declared tokenizer is the
one the graph runs. A folder that breaks any of this
is an ArtifactError naming the folder, never a half-loaded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from contract.card import ModelCard, read_card
from contract.errors import ArtifactError
from contract.tokens import rules_in_graph

SIGNATURE_KEY = "serving_default"
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class SavedModel:
    """A loaded, checked model version: `predict` takes one batch in the kind's input form."""

    path: Path
    card: ModelCard
    _function: Any  # the concrete `serving_default` function
    _module: Any  # keeps the loaded SavedModel (and its variables) alive

    def predict(self, batch: Any) -> np.ndarray:
        """One model call: a batch of inputs (e.g. uint8 [n, H, W, 3], or n UTF-8 texts) -> float32 [n, classes]."""
        kind = self.card.kind
        tensor = tf.constant(batch, dtype=kind.dtype)
        result: np.ndarray = self._function(**{kind.input_name: tensor})[OUTPUT_NAME].numpy()
        return result

    def graph_def(self) -> Any:
        """`serving_default`'s GraphDef, with the functions it calls (layers, loops) in its library."""
        return self._function.graph.as_graph_def()

    def op_types(self) -> frozenset[str]:
        """Every op type in `serving_default`'s graph, the functions it calls (layers, loops) included."""
        graph = self.graph_def()
        ops = {node.op for node in graph.node}
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
        return frozenset(ops)


def load_model(version_dir: Path, name: str | None = None, version: int | None = None) -> SavedModel:
    """Load one version folder and check that its SavedModel matches its card.

    `name` and `version` default to the folder's; a version being staged passes its own.
    """
    card = read_card(version_dir, name, version)
    if not (version_dir / "saved_model.pb").is_file():
        raise ArtifactError(f"{version_dir}: no saved_model.pb")
    try:
        module = tf.saved_model.load(str(version_dir))
    except Exception as exc:  # TF raises many types for a broken SavedModel
        raise ArtifactError(f"{version_dir}: cannot load the SavedModel ({exc})") from exc
    function = module.signatures.get(SIGNATURE_KEY)
    if function is None:
        raise ArtifactError(f"{version_dir}: no {SIGNATURE_KEY!r} signature")
    _check_signature(version_dir, card, function)
    _check_tokenizer(version_dir, card, function)
    return SavedModel(path=version_dir, card=card, _function=function, _module=module)


def _check_signature(version_dir: Path, card: ModelCard, function: Any) -> None:
    kind = card.kind
    inputs = function.structured_input_signature[1]
    spec = inputs.get(kind.input_name)
    if spec is None or len(inputs) != 1 or spec.dtype != kind.dtype:
        found = {k: v.dtype.name for k, v in inputs.items()}
        raise ArtifactError(
            f"{version_dir}: signature needs one input {kind.input_name!r} ({kind.dtype.name}), has {found}"
        )
    want = [None, *kind.item_shape(card.input)]
    shape = spec.shape.as_list()
    # Each dimension the signature fixes must be the card's; one it leaves open (None) accepts any.
    if len(shape) != len(want) or any(have not in (None, need) for have, need in zip(shape, want, strict=True)):
        raise ArtifactError(f"{version_dir}: input shape {spec.shape} does not match the card's {want}")
    output = function.structured_outputs.get(OUTPUT_NAME)
    if output is None or output.dtype != tf.float32 or output.shape.as_list()[-1] != len(card.labels):
        raise ArtifactError(
            f"{version_dir}: output {OUTPUT_NAME!r} must have {len(card.labels)} classes "
            f"(one per label) in float32, signature has {function.structured_outputs}"
        )


def _check_tokenizer(version_dir: Path, card: ModelCard, function: Any) -> None:
    """A card that declares its tokenizer must describe the rules its graph really runs: explanations
    place their weights on the words those rules make (contract.tokens)."""
    spec = getattr(card.input, "tokenizer", None)
    if spec is None:
        return
    found = rules_in_graph(function.graph.as_graph_def())
    if found != spec.rule_set():
        missing, extra = spec.rule_set() - found, found - spec.rule_set()
        raise ArtifactError(
            f"{version_dir}: the card's input.tokenizer {spec.model_dump()} does not match the graph's rules "
            f"(declared but not in the graph: {sorted(missing)}; in the graph but not declared: {sorted(extra)})"
        )
