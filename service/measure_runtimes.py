"""python -m service.measure_runtimes VERSION_DIR...: each version's in-process speed per runtime, and
what choosing its runtime at load costs.

For each version folder: the runtime SERVICE_RUNTIME=auto chooses for it and how long that took
(reading the sample and running a candidate on all of it), then items per second of each runtime
at one batch size, the runtimes alternated round after round in this one process, so that a
machine whose speed drifts drifts for all of them; the figure is the median of the rounds. The
inputs are the first eight batches of the version's verification sample, cycled (a version
without one is refused). Every runtime is measured, verified or not: the figures say what each would give.

With `--explanations N`, also what each runtime does to explanations (docs/explanations.md): the
first N sample inputs explained by occlusion (contract.occlusion, the service's defaults) on every
runtime, and each one's weights against float32's: the mean and largest absolute difference, and
the share of inputs whose most-weighted part is the same.

Run it with nothing else on the machine (the load average is printed with the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from contract import occlusion
from contract.kinds import TextInput
from contract.savedmodel import SavedModel, load_model
from contract.speed import machine_description, measure_throughput
from contract.tokens import Tokenizer
from contract.verification import VerificationSample, read_sample
from service.core.runtimes import CANDIDATES, FLOAT32, Predict, choose_runtime
from service.settings import Settings


def measure(version_dir: Path, batch_size: int, rounds: int, seconds: float, explanations: int) -> dict[str, Any]:
    model = load_model(version_dir)
    sample = read_sample(version_dir, model.card)
    if sample is None:
        raise SystemExit(f"{version_dir}: no verification sample to measure with")
    started = time.perf_counter()
    _, chosen = choose_runtime(model, Settings(runtime="auto", max_batch_size=batch_size))
    choice_seconds = time.perf_counter() - started
    predicts: dict[str, Predict] = {FLOAT32: model.predict}
    predicts |= {name: candidate.build(model) for name, candidate in CANDIDATES.items()}
    # Eight batches of distinct inputs: enough to rotate through, and each measurement's warm-up
    # (one call per batch, contract.speed) stays short beside the seconds measured.
    batches = list(sample.batches(batch_size))[:8]
    figures: dict[str, list[float]] = {name: [] for name in predicts}
    for _ in range(rounds):
        for name, predict in predicts.items():
            figures[name].append(measure_throughput(predict, batches, seconds))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    explained = explanation_differences(model, sample, predicts, explanations) if explanations else None
    return {
        "version": str(version_dir),
        "chosen": chosen.to_json(),
        "choice_seconds": round(choice_seconds, 2),
        "batch_size": batch_size,
        "items_per_second": {name: round(value, 1) for name, value in medians.items()},
        "rounds": {name: [round(value, 1) for value in values] for name, values in figures.items()},
        "vs_float32": {name: round(value / medians[FLOAT32], 3) for name, value in medians.items()},
        **({"explanations": explained} if explained is not None else {}),
    }


def explanation_differences(model: SavedModel, sample: VerificationSample, predicts: dict[str, Predict],
                            count: int) -> dict[str, Any]:
    """Each runtime's occlusion weights on the first `count` sample inputs, against float32's."""
    spec = model.card.input
    if isinstance(spec, TextInput):
        if spec.tokenizer is None:
            return {"skipped": "the card declares no tokenizer"}
        tokenizer = Tokenizer(spec.tokenizer, spec.max_tokens)
    weights: dict[str, list[np.ndarray]] = {name: [] for name in predicts}
    for index in range(min(count, len(sample))):
        item = sample.inputs[index]
        if isinstance(item, str):
            tokens = tokenizer.tokens(item)
            variants = occlusion.text_variants(item, tokens, occlusion.parts(len(tokens), occlusion.MAX_WORDS))
            rows: Any = [text.encode("utf-8") for text in [item, *variants]]
        else:
            rows = np.concatenate([item[np.newaxis], occlusion.image_variants(item, occlusion.GRID)])
        if len(rows) < 2:
            continue
        for name, predict in predicts.items():
            outputs = predict(rows)
            weights[name].append(occlusion.weights(outputs[0], outputs[1:])[1])
    reference = weights[FLOAT32]
    compared = {}
    for name, found in weights.items():
        if name == FLOAT32:
            continue
        differences = np.concatenate([np.abs(a - b) for a, b in zip(found, reference, strict=True)])
        same_top = np.mean([a.argmax() == b.argmax() for a, b in zip(found, reference, strict=True)])
        compared[name] = {"mean_abs_difference": round(float(differences.mean()), 5),
                          "max_abs_difference": round(float(differences.max()), 4),
                          "same_top_part": round(float(same_top), 3)}
    largest = np.concatenate([np.abs(w) for w in reference]).max()
    return {"inputs": len(reference), "largest_float32_weight": round(float(largest), 4), "vs_float32": compared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", type=Path, help="version folders with a verification sample")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each measures every runtime once")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per runtime per round")
    parser.add_argument("--explanations", type=int, default=0, metavar="N",
                        help="also compare each runtime's explanations of the first N sample inputs with float32's")
    args = parser.parse_args()
    print(f"# {machine_description()}; load average before: {os.getloadavg()[0]:.2f}")
    for version_dir in args.versions:
        print(json.dumps(measure(version_dir, args.batch_size, args.rounds, args.seconds, args.explanations)))
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
