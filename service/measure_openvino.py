"""python -m service.measure_openvino VERSION_DIR: faster runtimes for one version (OpenVINO, int8, XLA, a
different export of the same weights) against the service's own, judged on the version's verification
sample and timed. A measurement of candidates: the service runs only those of service/core/runtimes.py.

OpenVINO comes with the project's `openvino` extra. NNCF, which only an image version needs (int8),
is not a dependency; install it beside the project, for example in a virtual environment that also
sees the project's packages:

    python -m venv /tmp/ovenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/ovenv/lib/python3.11/site-packages/project.pth
    /tmp/ovenv/bin/pip install openvino==2026.4.1 nncf==3.4.0
    /tmp/ovenv/bin/opt_in_out --opt_out        # OpenVINO's telemetry off (a consent file holding 0)
    /tmp/ovenv/bin/python -m service.measure_openvino artifacts/cifar10-cnn/4

Every candidate runs the whole sample and is judged against its float32 reference: top-1 agreement,
accuracy and ECE (`Agreement.failures`, the service's criteria). Then items/s at batch 64 on the
sample's first eight batches, every candidate once per round, the order reversed every other round;
a markdown table gives the median and spread of each one's rate and of its ratio to TensorFlow float32
within the rounds. `--candidate` narrows them, so that each round is short.

An image version: OpenVINO reads the SavedModel folder itself, in f32 and bf16; the int8 model is
NNCF's post-training quantization, calibrated on CIFAR-10 *training* images (`--calibration` of them,
taken evenly from each class of the image-folder zip's train split, decoded as the service decodes),
never on the verification sample, which is test data and what every runtime is judged on.

A text version: OpenVINO cannot run the graph's string ops, so the version is split (`split_text_model`)
into its tokenizer, run in TensorFlow, and its network on token ids, rebuilt from
training/sentiment_model.py with the SavedModel's own variables and written as a SavedModel with a
token-id signature in a temporary folder; nothing is timed unless the split gives `serving_default`'s
outputs on the whole sample. The n-gram member's word-pair ids are computed on the tokenizer's side, a
second input of the network: OpenVINO's CPU plugin computes int64 in int32, and the pair hash overflows
it. Candidates, strings in and probabilities out: TensorFlow's bf16 (the service's rewrite), the split
in TensorFlow, the network in OpenVINO f32 (the latency hint, and the throughput hint with the batch
split over parallel requests) and bf16, under XLA (ids padded to a multiple of 16, so that few shapes
compile), and, for texts of at most 64 tokens, with its LSTMs unrolled (ids padded to the card's
max_tokens). The tokenization share is the TensorFlow tokenizer's time per text alone, timed in the
same rounds, over each candidate's.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from contract.kinds import TextInput
from contract.pixels import model_pixels
from contract.savedmodel import OUTPUT_NAME, SIGNATURE_KEY, SavedModel, load_model
from contract.speed import machine_description, measure_throughput
from contract.verification import Agreement, VerificationSample, read_sample
from service.core.runtimes import CANDIDATES, FLOAT32
from training.calibration import TemperatureScaling
from training.common import export_saved_model
from training.sentiment_model import (
    NetworkConfig,
    WordPairIds,
    make_classifier,
    make_ensemble,
    make_ngram_classifier,
)
from training.text_preprocessing import TokenIds

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
BATCH_SIZE = 64
TOKENIZER = "tokenization alone (TensorFlow)"
# The split is the same computation as serving_default, so only float rounding may differ.
SPLIT_TOLERANCE = 1e-6
# An unrolled LSTM is one copy of the cell per step: 64 steps is a graph that builds in seconds, the
# 500 of the reviews would not.
UNROLL_MAX_TOKENS = 64
XLA_LENGTH_MULTIPLE = 16
# How OpenVINO runs a recurrent layer: a generic loop, or its fused LSTM.
RECURRENT_OPS = ("Loop", "TensorIterator", "LSTMSequence", "LSTMCell")

Predict = Callable[[Any], np.ndarray]


# --- shared: OpenVINO, judging, timing, the table -------------------------------------------------


def openvino_predict(core: Any, model: Any, precision: str, hint: str = "LATENCY") -> Predict:
    """The compiled model's outputs for one batch (an array, or a dict of named arrays).

    LATENCY: one synchronous request on all cores, as the service's one model thread would use it.
    THROUGHPUT: the batch's rows split over the plugin's optimal number of requests, run at once
    (one stream each), since one request alone would have one stream's cores.
    """
    import openvino

    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision})
    output = compiled.outputs[0]
    if hint == "LATENCY":
        request = compiled.create_infer_request()
        return lambda batch: request.infer(batch)[output].copy()
    queue = openvino.AsyncInferQueue(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    parts: dict[int, np.ndarray] = {}
    queue.set_callback(lambda request, index: parts.__setitem__(index, request.get_output_tensor(0).data.copy()))

    def predict(batch: Any) -> np.ndarray:
        named = batch if isinstance(batch, dict) else {0: batch}
        pieces = {name: np.array_split(rows, len(queue)) for name, rows in named.items()}
        for index in range(len(queue)):
            piece = {name: split[index] for name, split in pieces.items()}
            queue.start_async(piece if isinstance(batch, dict) else piece[0], userdata=index)
        queue.wait_all()
        return np.concatenate([parts.pop(index) for index in range(len(queue))])

    return predict


def judge(predicts: dict[str, Predict], sample: VerificationSample) -> dict[str, Agreement]:
    """Each candidate's outputs on the whole sample against the float32 reference stored in it."""
    agreements = {}
    for name, predict in predicts.items():
        started = time.perf_counter()
        agreements[name] = agreement = sample.compare(np.concatenate([predict(b) for b in sample.batches(BATCH_SIZE)]))
        print(f"# {name}: top-1 agreement {agreement.top1_agreement:.2%}, largest difference in a probability "
              f"{agreement.max_abs_difference:.2g}; {'; '.join(agreement.failures()) or 'verifies'} "
              f"({time.perf_counter() - started:.1f} s on the sample)", flush=True)
    return agreements


def time_rounds(predicts: dict[str, Predict], batches: list[Any], rounds: int,
                seconds: float) -> dict[str, list[float]]:
    """Items/s of each, every one once per round, the order reversed every other round so that a machine
    whose speed drifts drifts for all of them."""
    rates: dict[str, list[float]] = {name: [] for name in predicts}
    names = list(predicts)
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            rates[name].append(measure_throughput(predicts[name], batches, seconds))
    return rates


def _median_spread(values: list[float], form: str) -> str:
    return f"{statistics.median(values):{form}} ({min(values):{form}}-{max(values):{form}})"


def print_table(model: SavedModel, unit: str, rates: dict[str, list[float]], agreements: dict[str, Agreement]) -> None:
    """Markdown: per candidate, its rate and ratio to float32 (median and spread of the rounds), the share
    of its time spent tokenizing (text: when a TOKENIZER row was timed) and its figures on the sample."""
    reference = agreements[FLOAT32]
    tokenizer = rates.get(TOKENIZER)
    print(f"| {model.card.name} v{model.card.version}, batch {BATCH_SIZE} | {unit}/s, median (spread) "
          f"| / TF float32, median (spread) |{' tokenization share |' if tokenizer else ''} top-1 agreement "
          f"| accuracy (float32 {reference.reference_accuracy:.2%}) | ECE (float32 {reference.reference_ece:.4f}) "
          f"| largest difference | verifies |")
    print(f"|---|---:|---:|{'---:|' if tokenizer else ''}---:|---:|---:|---:|---|")
    for name, values in rates.items():
        ratios = [value / base for value, base in zip(values, rates[FLOAT32], strict=True)]
        cells = [f"{FLOAT32} (float32 {SIGNATURE_KEY})" if name == FLOAT32 else name, _median_spread(values, ",.0f"),
                 "1" if name == FLOAT32 else _median_spread(ratios, ".2f")]
        if name == TOKENIZER:
            print(f"| {cells[0]} | {cells[1]} |{' |' * 7}")
            continue
        if tokenizer:
            cells.append(f"{statistics.median(v / t for v, t in zip(values, tokenizer, strict=True)):.0%}")
        if name == FLOAT32:
            cells += ["", "", "", "", "reference"]
        else:
            agreement, failures = agreements[name], agreements[name].failures()
            cells += [f"{agreement.top1_agreement:.2%}", f"{agreement.candidate_accuracy:.2%}",
                      f"{agreement.candidate_ece:.4f}", f"{agreement.max_abs_difference:.2g}",
                      f"no: {'; '.join(failures)}" if failures else "yes"]
        print(f"| {' | '.join(cells)} |")


# --- image versions ---------------------------------------------------------------------------------


def calibration_images(path: Path, count: int, height: int, width: int) -> np.ndarray:
    """`count` training images, the same number from each class (`<root>/train/<class>/<image>`), as the
    model's uint8 input."""
    with zipfile.ZipFile(path) as archive:
        files: dict[str, list[str]] = {}
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if len(parts) >= 3 and parts[-3] == "train" and not name.endswith("/"):
                files.setdefault(parts[-2], []).append(name)
        if not files:
            raise SystemExit(f"{path}: no <root>/train/<class>/<image> files to calibrate with")
        names = [name for paths in files.values() for name in paths[: count // len(files)]]
        return np.stack([model_pixels(Image.open(io.BytesIO(archive.read(name))), height, width) for name in names])


def image_candidates(model: SavedModel, core: Any, dataset: Path, calibration: int) -> dict[str, Predict]:
    import nncf

    height, width = model.card.input.height, model.card.input.width  # type: ignore[attr-defined]
    converted = core.read_model(str(model.path))
    images = calibration_images(dataset, calibration, height, width)
    started = time.perf_counter()
    quantized = nncf.quantize(converted, nncf.Dataset([image[None] for image in images]), subset_size=len(images))
    print(f"# NNCF {nncf.__version__} int8: {len(images)} training images, quantized in "
          f"{time.perf_counter() - started:.1f} s")
    return {
        "tensorflow-bf16": CANDIDATES["tensorflow-bf16"].build(model),
        "openvino f32": openvino_predict(core, converted, "f32"),
        "openvino bf16": openvino_predict(core, converted, "bf16"),
        "openvino int8": openvino_predict(core, quantized, "f32"),
        "openvino int8, bf16 elsewhere": openvino_predict(core, quantized, "bf16"),
    }


# --- text versions: the split -----------------------------------------------------------------------

TOKEN_IDS, WORD_PAIR_IDS = "token_ids", "word_pair_ids"
# The calibration layer's divisor (training.calibration.with_temperature), as the graph holds it.
_TEMPERATURE = re.compile(r"/calibrated_probabilities(_\d+)?/truediv/y$")


@dataclass(frozen=True)
class TextSplit:
    """A text version as two parts with its own weights: the tokenizer (strings -> the network's int64
    inputs, in TensorFlow) and the network (those inputs -> probabilities, a Keras model)."""

    token_ids: TokenIds  # with the version's vocabulary
    word_pairs: WordPairIds | None  # the n-gram member's (None without one)
    network: keras.Model  # on {TOKEN_IDS: [batch, time], WORD_PAIR_IDS: [batch, 2 * time - 1]}
    max_tokens: int

    def tokenizer(self, multiple: int | None = None) -> Callable[[Any], dict[str, Any]]:
        """Strings [batch] -> the network's inputs; `multiple`: ids padded to a multiple of it (at most
        max_tokens), so that a compiler sees few shapes. Padding is masked: the answers stay the same."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def inputs(texts: Any) -> dict[str, Any]:
            ids = self.token_ids(texts)
            if multiple is not None:
                width = tf.shape(ids)[1]
                length = tf.minimum(self.max_tokens, (width + multiple - 1) // multiple * multiple)
                ids = tf.pad(ids, [[0, 0], [0, length - width]])
            return {TOKEN_IDS: ids} | ({} if self.word_pairs is None else {WORD_PAIR_IDS: self.word_pairs(ids)})

        return lambda batch: inputs(tf.constant(batch))

    def save_network(self, folder: Path) -> None:
        """The network as a SavedModel whose serving_default takes the int64 id inputs."""
        names = [tensor.name for tensor in self.network.inputs]
        specs = {name: tf.TensorSpec([None, None], tf.int64, name=name) for name in names}
        export_saved_model(self.network, folder, specs)


def split_text_model(model: SavedModel, unroll: bool = False) -> TextSplit:
    """Rebuild `model`'s tokenizer and network from training's definitions (the card says which: members,
    n-gram member, sizes) and give them the SavedModel's own vocabulary, variables and temperature.
    `unroll`: the LSTMs unrolled, which needs ids of a fixed length. SystemExit where a part does not match."""
    card, spec = model.card, model.card.input
    training = card.training.model_extra or {}
    if not isinstance(spec, TextInput) or spec.tokenizer is None or "network" not in training:
        raise SystemExit(f"{model.path}: not a sentiment version whose card declares its tokenizer and network")
    # A second copy of the SavedModel, for its variables and table (the contract's keeps them private);
    # `loaded` keeps them alive while they are read.
    loaded = tf.saved_model.load(str(model.path))
    serving = loaded.signatures[SIGNATURE_KEY]
    vocabulary = _vocabulary(serving)
    token_ids = TokenIds(len(vocabulary), spec.max_tokens, spec.tokenizer.keep, social=spec.tokenizer.social,
                         split_hashtags=spec.tokenizer.split_hashtags)
    token_ids.set_vocabulary(vocabulary)

    shape, classes = training["network"], len(card.labels)
    config = NetworkConfig(len(vocabulary), shape["embedding_dim"], shape["lstm_units"], shape["dropout"], classes,
                           shape["lstm_layers"])
    members = [make_classifier(config, None, name=f"glove_{i + 1}")
               for i in range(training.get("ensemble", {}).get("members", 1))]
    if unroll:  # set before the first call on real ids, which traces each LSTM's steps
        for layer in (layer for member in members for layer in member.layers):
            if isinstance(layer, keras.layers.Bidirectional):
                for lstm in (layer.forward_layer, layer.backward_layer):
                    lstm.unroll = True
                    # Keras 3.15's unrolled steps zero the outputs at padded steps with the mask in forward
                    # order, also for the backward LSTM's reversed outputs, which zeroes real steps. Nothing
                    # reads the padded steps (the pooling and a next LSTM are masked): no zeros needed.
                    lstm.zero_output_for_mask = False
    glove = make_ensemble(members)
    ids = keras.Input(shape=(None,), dtype="int64", name=TOKEN_IDS)
    inputs, outputs, parts, word_pairs = [ids], [glove(ids)], [glove], None
    if "ngram_member" in training:
        ngram = make_ngram_classifier(len(vocabulary), training["ngram_member"]["buckets"], classes)
        word_pairs = ngram.get_layer("word_pairs")
        pairs = keras.Input(shape=(None,), dtype="int64", name=WORD_PAIR_IDS)
        x = pairs
        for layer in ngram.layers[ngram.layers.index(word_pairs) + 1 :]:  # its own layers after the pairs
            x = layer(x)
        inputs.append(pairs)
        outputs.append(x)
        parts.append(ngram)
    # make_served_classifier's mean and with_temperature's layer, on the two inputs
    probabilities = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="mean_probabilities")(outputs)
    temperature = _temperature(model, serving)
    if temperature is not None:
        probabilities = TemperatureScaling(temperature, dtype="float32", name="calibrated_probabilities")(probabilities)
    _copy_weights(model.path, [weight for part in parts for weight in part.weights], serving.variables)
    return TextSplit(token_ids, word_pairs, keras.Model(inputs, probabilities), spec.max_tokens)


def _vocabulary(serving: Any) -> list[str]:
    """The tokenizer's words in id order, from the graph's one lookup table; ids 0 and 1 are
    TextVectorization's padding and out-of-vocabulary entries, which the table does not hold."""
    variables = {id(variable.handle) for variable in serving.variables}
    tables = [c for c in serving.captured_inputs if c.dtype == tf.resource and id(c) not in variables]
    if len(tables) != 1:
        raise SystemExit(f"serving_default reads {len(tables)} lookup tables, the tokenizer has one")
    keys, values = tf.raw_ops.LookupTableExportV2(table_handle=tables[0], Tkeys=tf.string, Tvalues=tf.int64)
    order = np.argsort(values.numpy())
    if not np.array_equal(values.numpy()[order], np.arange(2, len(order) + 2)):
        raise SystemExit("the vocabulary table's ids are not 2, 3, ... one per word")
    return ["", "[UNK]", *(word.decode("utf-8") for word in keys.numpy()[order])]


def _temperature(model: SavedModel, serving: Any) -> float | None:
    """The calibration's T as the graph divides by it: the card's is rounded to 5 decimals, which would
    move the outputs by about 1e-5."""
    calibration = (model.card.model_extra or {}).get("calibration", {})
    if "temperature" not in calibration:
        return None
    library = serving.graph.as_graph_def().library.function
    found = [float(tf.make_ndarray(node.attr["value"].tensor))
             for function in library for node in function.node_def if _TEMPERATURE.search(node.name)]
    if len(found) != 1 or abs(found[0] - calibration["temperature"]) > 1e-4:
        raise SystemExit(f"{model.path}: the card's temperature {calibration['temperature']} is not the graph's "
                         f"one divisor {found}")
    return found[0]


def _copy_weights(path: Path, weights: list[Any], variables: list[Any]) -> None:
    """The SavedModel's variables, in the order serving_default reads them (the order its layers run, as
    the rebuilt ones do), into the rebuilt weights: each must have the same shape and name (a path
    suffix of the rebuilt one's, ignoring Keras's _N suffixes: forward_lstm_2 is the third forward_lstm)."""

    def bare(name: str) -> str:
        return re.sub(r"_\d+(?=/|$)", "", name.removesuffix(":0"))

    if len(weights) != len(variables):
        raise SystemExit(f"{path}: {len(variables)} variables, the card's network has {len(weights)} weights")
    for weight, variable in zip(weights, variables, strict=True):
        named = f"/{bare(weight.path)}".endswith(f"/{bare(variable.name)}")
        if not named or tuple(weight.shape) != tuple(variable.shape):
            raise SystemExit(f"{path}: variable {variable.name} {tuple(variable.shape)} does not match the rebuilt "
                             f"network's {weight.path} {tuple(weight.shape)}")
        weight.assign(variable)


# --- text versions: the candidates ------------------------------------------------------------------


def saved_split(split: TextSplit, folder: Path) -> Predict:
    """Strings -> probabilities through the split: its tokenizer, then its network saved in `folder` (what
    OpenVINO reads) and loaded back."""
    split.save_network(folder)
    saved = tf.saved_model.load(str(folder))  # kept by the closure: its variables live as long as it does
    tokenize = split.tokenizer()
    return lambda batch: saved.signatures[SIGNATURE_KEY](**tokenize(batch))[OUTPUT_NAME].numpy()


def split_difference(model: SavedModel, predict: Predict, sample: VerificationSample) -> float:
    """The largest difference between `predict`'s outputs and serving_default's on the whole sample."""
    return max(float(np.abs(predict(batch) - model.predict(batch)).max()) for batch in sample.batches(BATCH_SIZE))


def text_candidates(model: SavedModel, sample: VerificationSample, core: Any,
                    folder: Path) -> tuple[dict[str, Predict], Predict]:
    """Strings in, probabilities out: the split's tokenizer in TensorFlow, then its network on each runtime;
    and the tokenizer alone (ids out), for the tokenization share."""
    split = split_text_model(model)
    split_tf = saved_split(split, folder)
    difference = split_difference(model, split_tf, sample)
    print(f"# the split (tokenizer in TensorFlow, network saved with a token-id signature) against "
          f"serving_default on the {len(sample)} sample texts: largest difference {difference:.2g}", flush=True)
    if difference > SPLIT_TOLERANCE:
        raise SystemExit(f"{model.path}: the split differs from serving_default by {difference:.2g}")

    def on(network: Callable[[dict[str, Any]], Any], tokenize: Callable[[Any], dict[str, Any]]) -> Predict:
        return lambda batch: np.asarray(network(tokenize(batch)))

    def on_openvino(precision: str, hint: str = "LATENCY") -> Predict:
        network = openvino_predict(core, converted, precision, hint)
        return lambda batch: network({name: ids.numpy() for name, ids in tokenize(batch).items()})

    tokenize = split.tokenizer()
    converted = core.read_model(str(folder))
    kinds = Counter(op.get_type_name() for op in converted.get_ordered_ops())
    print(f"# OpenVINO's network: {', '.join(f'{kinds[kind]} {kind}' for kind in RECURRENT_OPS)} ops", flush=True)
    xla = on(tf.function(lambda inputs: split.network(inputs, training=False), jit_compile=True),
             split.tokenizer(XLA_LENGTH_MULTIPLE))
    first = next(sample.batches(BATCH_SIZE))
    seconds = []
    for _ in range(2):  # XLA compiles each new shape on its first call
        started = time.perf_counter()
        xla(first)
        seconds.append(time.perf_counter() - started)
    print(f"# XLA: the first call on a batch of {len(first)} took {seconds[0]:.1f} s (compiling its shape), "
          f"the second {seconds[1]:.2f} s", flush=True)
    candidates = {
        "tensorflow-bf16": CANDIDATES["tensorflow-bf16"].build(model),
        "split, TensorFlow float32": split_tf,
        "split, OpenVINO f32": on_openvino("f32"),
        "split, OpenVINO f32, throughput hint": on_openvino("f32", "THROUGHPUT"),
        "split, OpenVINO bf16": on_openvino("bf16"),
        f"split, XLA (ids padded to a multiple of {XLA_LENGTH_MULTIPLE})": xla,
    }
    if split.max_tokens <= UNROLL_MAX_TOKENS:
        unrolled = split_text_model(model, unroll=True)
        network = tf.function(lambda inputs: unrolled.network(inputs, training=False))
        candidates[f"split, LSTMs unrolled (ids padded to {split.max_tokens})"] = on(
            network, unrolled.tokenizer(split.max_tokens))
    return candidates, lambda batch: tokenize(batch)[TOKEN_IDS].numpy()


def main() -> None:
    import openvino

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", type=Path, help="an image or text version folder with a verification sample")
    parser.add_argument("--dataset", type=Path, default=DATASETS / "cifar10-jpeg.zip",
                        help="images: an image-folder zip whose train split calibrates int8")
    parser.add_argument("--calibration", type=int, default=300, help="images: training images for int8's calibration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per runtime per round")
    parser.add_argument("--candidate", action="append", metavar="NAME",
                        help="judge and time only these candidates beside TensorFlow float32 (repeatable, the "
                             "names the table gives); default every one")
    args = parser.parse_args()
    print(f"# {args.version}: {machine_description()}, OpenVINO {openvino.__version__}; {args.rounds} rounds of "
          f"{args.seconds:g} s; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    model = load_model(args.version)
    sample = read_sample(args.version, model.card)
    if sample is None:
        raise SystemExit(f"{args.version}: no verification sample to judge the runtimes on")
    core = openvino.Core()
    text = isinstance(model.card.input, TextInput)
    with tempfile.TemporaryDirectory(prefix="network-") as folder:
        if text:
            candidates, tokenizer = text_candidates(model, sample, core, Path(folder))
        else:
            candidates = image_candidates(model, core, args.dataset, args.calibration)
        unknown = sorted(set(args.candidate or []) - set(candidates))
        if unknown:
            raise SystemExit(f"unknown candidate(s) {unknown}; known: {', '.join(candidates)}")
        predicts = {FLOAT32: model.predict, **{name: candidates[name] for name in args.candidate or candidates}}
        agreements = judge(predicts, sample)
        timed = predicts | ({TOKENIZER: tokenizer} if text else {})
        rates = time_rounds(timed, list(sample.batches(BATCH_SIZE))[:8], args.rounds, args.seconds)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print_table(model, "texts" if text else "images", rates, agreements)


if __name__ == "__main__":
    main()
