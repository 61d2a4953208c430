"""python -m service.measure_runtimes VERSION_DIR...: each version's in-process speed per runtime, and
what choosing its runtime at load costs.

For each version folder: the runtime SERVICE_RUNTIME=auto chooses for it and how long that took
(reading the sample and running a candidate on all of it), then items per second of each runtime
at each batch size, the runtimes alternated round after round in this one process, so that a
machine whose speed drifts drifts for all of them; the figure is the median of the rounds. The
inputs are the first eight batches of the version's verification sample, cycled (a version
without one is refused), or every full batch of `--inputs` (what `make bench` sends over HTTP).
Every runtime is measured, verified or not: the figures say what each would give; `--runtime`
narrows them (`auto`: the one auto chose).

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


def read_inputs(path: Path) -> np.ndarray | list[bytes]:
    """Model inputs from a file: images as a `.npy` uint8 array, texts as a `.json` list of strings."""
    if path.suffix == ".json":
        return [text.encode() for text in json.loads(path.read_text(encoding="utf-8"))]
    return np.load(path, allow_pickle=False)


def measure(version_dir: Path, batch_sizes: list[int], rounds: int, seconds: float,
            runtimes: list[str] | None = None, inputs: np.ndarray | list[bytes] | None = None,
            explanations: int = 0) -> dict[str, Any]:
    model = load_model(version_dir)
    sample = read_sample(version_dir, model.card)
    if sample is None and (inputs is None or explanations):
        raise SystemExit(f"{version_dir}: no verification sample to measure with (or give --inputs, "
                         "without --explanations)")
    started = time.perf_counter()
    # The service's own default batch size, so that the choice is the one the service makes.
    _, chosen = choose_runtime(model, Settings(runtime="auto"))
    choice_seconds = time.perf_counter() - started
    every: dict[str, Predict] = {FLOAT32: model.predict}
    every |= {name: candidate.build(model) for name, candidate in CANDIDATES.items()}
    wanted = [chosen.name if name == "auto" else name for name in runtimes or every]
    unknown = sorted(set(wanted) - set(every))
    if unknown:
        raise SystemExit(f"unknown runtime(s) {unknown}; known: auto, {', '.join(every)}")
    predicts = {name: every[name] for name in dict.fromkeys(wanted)}  # in the order asked, once each
    figures: dict[str, list[float]] = {f"{name}@{size}": [] for size in batch_sizes for name in predicts}
    for size in batch_sizes:
        if inputs is None:
            assert sample is not None
            # Eight batches of distinct inputs: enough to rotate through, and each measurement's warm-up
            # (one call per batch, contract.speed) stays short beside the seconds measured.
            batches = list(sample.batches(size))[:8]
        else:
            batches = [inputs[start : start + size] for start in range(0, len(inputs) - size + 1, size)]
        for _ in range(rounds):
            for name, predict in predicts.items():
                figures[f"{name}@{size}"].append(measure_throughput(predict, batches, seconds))
    medians = {key: statistics.median(values) for key, values in figures.items()}
    # Explanations are compared with float32's, whichever runtimes were timed.
    explained = explanation_differences(model, sample, every, explanations) if explanations and sample else None
    return {
        "version": str(version_dir),
        "chosen": chosen.to_json(),
        "choice_seconds": round(choice_seconds, 2),
        "batch_sizes": batch_sizes,
        # runtime@batch size -> items/s: the median of the rounds, and each round's
        "items_per_second": {key: round(value, 1) for key, value in medians.items()},
        "rounds": {key: [round(value, 1) for value in values] for key, values in figures.items()},
        "vs_float32": {key: round(value / medians[_float32(key)], 3)
                       for key, value in medians.items() if _float32(key) in medians},
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
            grid = occlusion.grid_for(item.shape[0], item.shape[1])
            rows = np.concatenate([item[np.newaxis], occlusion.image_variants(item, grid)])
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


def _float32(key: str) -> str:
    """'tensorflow-bf16@64' -> 'tensorflow@64': the float32 figure it is compared with."""
    return f"{FLOAT32}@{key.partition('@')[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", type=Path, help="version folders with a verification sample")
    parser.add_argument("--batch-size", type=int, action="append", help="repeatable; default 64")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each measures every runtime once")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per runtime per round")
    parser.add_argument("--runtime", action="append", metavar="NAME",
                        help="measure only these runtimes, in this order (repeatable; auto: the one auto "
                             "chooses); default every runtime")
    parser.add_argument("--inputs", type=Path,
                        help="measure on these inputs instead of the sample: a .npy uint8 image array "
                             "[n, H, W, 3] or a .json list of texts")
    parser.add_argument("--explanations", type=int, default=0, metavar="N",
                        help="also compare each runtime's explanations of the first N sample inputs with float32's")
    args = parser.parse_args()
    inputs = None if args.inputs is None else read_inputs(args.inputs)
    print(f"# {machine_description()}; load average before: {os.getloadavg()[0]:.2f}")
    for version_dir in args.versions:
        result = measure(version_dir, args.batch_size or [64], args.rounds, args.seconds, args.runtime, inputs,
                         args.explanations)
        print(json.dumps(result), flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
