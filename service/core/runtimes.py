"""The runtime each model version runs on: chosen when the version loads, checked against its card.

A runtime is a way of making one version's model calls:

- `tensorflow`: the SavedModel's `serving_default` in float32, as trained; the reference.
- `openvino-bf16`: the same SavedModel read and compiled by OpenVINO (the `openvino` extra), in bf16:
  about twice float32's images per core where the CPU computes bf16 natively, 1.3 times TensorFlow's
  own bf16 (docs/runtimes.md). OpenVINO cannot read the text models' in-graph tokenizer.
- `tensorflow-bf16`: the same function under oneDNN's bf16 auto mixed precision, which rewrites
  convolutions and matrix products to bf16 where the CPU computes them natively. TensorFlow's
  switch for it is process-wide; the service sets it per call instead, so each version has its
  own runtime (service/shims/tensorflow_call_options.py says why and how).

How a version's runtime is chosen (`choose_runtime`), with SERVICE_RUNTIME:

1. `tensorflow`: float32, nothing checked.
2. Otherwise the candidates are, in order, `auto`: every runtime of `PREFERENCE` before
   `tensorflow`, fastest first; a named runtime: that one. A candidate is
   - skipped when this CPU or this install lacks what it needs (bf16: SERVICE_CPU_BF16,
     `cpu_bf16_flags`; OpenVINO: its package), when it cannot run the model (OpenVINO: string
     inputs), or when the model is of a shape it was measured to slow down (TensorFlow's bf16: a
     graph without a convolution; the text models' LSTMs and dense layers ran 0.75-0.82x, docs/runtimes.md);
   - tried only on a version whose card declares a verification sample (contract.verification);
   - used if it runs every input of the sample and its outputs pass `Agreement.failures()`
     against the sample's float32 reference.
3. Otherwise `tensorflow`, with a reason naming what each candidate lacked; a failure is logged
   as a warning.

Nothing is timed, so the same folder on the same CPU with the same settings always gets the same
runtime: no race between runtimes at start.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from contract.errors import ArtifactError
from contract.savedmodel import SavedModel
from contract.verification import VerificationSample, read_sample
from service.core.workers import cores_of_this_process
from service.settings import Settings

log = logging.getLogger("service.runtimes")

FLOAT32 = "tensorflow"
# auto's order: the fastest first; float32 last, since it always works.
PREFERENCE = ("openvino-bf16", "tensorflow-bf16", FLOAT32)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The ops whose bf16 kernels make the gain. Where a graph has none of them, oneDNN still rewrites its
# matrix products, and the casts around small ones cost more than they save (docs/runtimes.md).
CONVOLUTIONS = frozenset({"Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv"})

Predict = Callable[[Any], np.ndarray]


@cache
def cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The bf16 instruction sets this CPU lists in /proc/cpuinfo (none where there is no such file)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return tuple(flag for flag in BF16_FLAGS if flag in flags)


def bf16_unavailable(settings: Settings) -> str | None:
    """Why this process may not use bf16 instructions, or None if it may."""
    if settings.cpu_bf16 == "off":
        return "SERVICE_CPU_BF16=off"
    if not cpu_bf16_flags():
        return f"this CPU lists neither {' nor '.join(BF16_FLAGS)} in /proc/cpuinfo"
    return None


def _bf16_unsuitable(saved_model: SavedModel, settings: Settings) -> str | None:
    """Why `saved_model` should not run in bf16 here: the CPU, or a graph it would slow down."""
    unavailable = bf16_unavailable(settings)
    if unavailable is not None:
        return unavailable
    if not CONVOLUTIONS & saved_model.op_types():
        return "no convolution in the graph (without one, bf16 was measured slower)"
    return None


def _openvino_unsuitable(saved_model: SavedModel, settings: Settings) -> str | None:
    """Why `saved_model` cannot run on OpenVINO in bf16 here: the package, the CPU, or string inputs."""
    if importlib.util.find_spec("openvino") is None:
        return "the openvino package is not installed (the openvino extra)"
    unavailable = bf16_unavailable(settings)
    if unavailable is not None:
        return unavailable
    if saved_model.card.kind.dtype.name == "string":
        return "OpenVINO cannot run a graph that tokenizes strings"
    return None


def openvino_config() -> dict[str, Any]:
    """bf16, one call at a time (the latency hint), on this process's share of the cores: all of them for one
    process, half each for two workers (service.core.workers). Unlike TensorFlow's intra-op pool it is not
    held to one thread fewer than its share: on 2 cores, with one thread it served 0.95-1.13 times float32's
    images/s, with both 1.63-1.70 times (docs/runtimes.md)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16"}
    cores = cores_of_this_process()
    if cores is not None:
        config["INFERENCE_NUM_THREADS"] = cores
    return config


def _openvino_bf16(saved_model: SavedModel) -> Predict:
    """The SavedModel read by OpenVINO itself (no conversion tool, so nothing of its telemetry runs) and compiled
    for this CPU in bf16 (`openvino_config`). One infer request per calling thread: a request is not safe to
    share, and the model executor may have several threads."""
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(saved_model.path)), "CPU", openvino_config())
    output = compiled.outputs[0]
    local = threading.local()

    def predict(batch: Any) -> np.ndarray:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        return np.array(request.infer([np.asarray(batch)])[output])

    return predict


def _tensorflow_bf16(saved_model: SavedModel) -> Predict:
    # Imported here: the shim reaches into TensorFlow, and only a version that tries bf16 needs it.
    from service.shims.tensorflow_call_options import bf16_call_options, with_options

    return with_options(saved_model.predict, bf16_call_options())


@dataclass(frozen=True)
class Candidate:
    """A faster runtime: when not to try it (`unsuitable` says why, for a model under the settings) and how
    to build its predict."""

    name: str
    unsuitable: Callable[[SavedModel, Settings], str | None]
    build: Callable[[SavedModel], Predict]


CANDIDATES = {
    "openvino-bf16": Candidate("openvino-bf16", _openvino_unsuitable, _openvino_bf16),
    "tensorflow-bf16": Candidate("tensorflow-bf16", _bf16_unsuitable, _tensorflow_bf16),
}


@dataclass(frozen=True)
class Runtime:
    """The runtime a version runs on, why, and the figures of every candidate run on its sample."""

    name: str
    reason: str
    verification: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "verification": self.verification}


def candidates_for(setting: str) -> tuple[str, ...]:
    """The runtimes SERVICE_RUNTIME=`setting` tries before float32, in order."""
    if setting == "auto":
        return tuple(name for name in PREFERENCE if name != FLOAT32)
    return () if setting == FLOAT32 else (setting,)


def choose_runtime(saved_model: SavedModel, settings: Settings) -> tuple[Predict, Runtime]:
    """`saved_model`'s predict on the first candidate runtime that this CPU allows and that verifies,
    else its float32 predict; with the runtime's name, why, and the figures of what was run."""
    card = saved_model.card
    what = f"{card.name} version {card.version}"
    names = candidates_for(settings.runtime)
    if not names:
        runtime = Runtime(FLOAT32, "SERVICE_RUNTIME=tensorflow")
        log.info("%s runs on %s: %s", what, runtime.name, runtime.reason)
        return saved_model.predict, runtime

    refused: list[str] = []
    figures: dict[str, dict[str, Any]] = {}
    sample: VerificationSample | None | str = None
    for name in names:
        candidate = CANDIDATES[name]
        why_not = candidate.unsuitable(saved_model, settings)
        if why_not is not None:
            refused.append(f"{name}: {why_not}")
            continue
        if sample is None:
            sample = _read_sample(saved_model)
        if isinstance(sample, str):  # no sample, or an unreadable one: nothing can be verified
            refused.append(f"{name}: not verified: {sample}")
            break
        predict, verdict, result = _verify(candidate, saved_model, sample, settings.max_batch_size)
        if result is not None:
            figures[name] = result
        if verdict is None:
            runtime = Runtime(name, f"passed verification on the card's sample of {len(sample)} inputs", figures)
            log.info("%s runs on %s: %s (%s)", what, name, runtime.reason, _summary(result))
            return predict, runtime
        refused.append(f"{name}: {verdict}")
        log.warning("%s: %s refused: %s", what, name, verdict)

    runtime = Runtime(FLOAT32, "float32, since " + "; ".join(refused), figures)
    log.info("%s runs on %s: %s", what, runtime.name, runtime.reason)
    return saved_model.predict, runtime


def _read_sample(saved_model: SavedModel) -> VerificationSample | str:
    """The version's sample, or why there is none to verify with."""
    try:
        sample = read_sample(saved_model.path, saved_model.card)
    except ArtifactError as exc:
        # The float32 model is the one the card describes; a broken sample only costs the faster runtime.
        log.warning("%s", exc)
        return f"the sample cannot be read ({exc})"
    return "no sample" if sample is None else sample


def _verify(candidate: Candidate, saved_model: SavedModel, sample: VerificationSample,
            batch_size: int) -> tuple[Predict, str | None, dict[str, Any] | None]:
    """The candidate's predict, why it is refused (None: it is not), and its figures on the sample."""
    started = time.perf_counter()
    try:
        predict = candidate.build(saved_model)
        outputs = np.concatenate([predict(batch) for batch in sample.batches(batch_size)])
    except Exception as exc:  # a runtime may fail to build or to run in many ways; any of them means float32
        return saved_model.predict, f"failed to run ({type(exc).__name__}: {_first_line(exc)})", None
    seconds = time.perf_counter() - started
    agreement = sample.compare(outputs)
    failures = agreement.failures()
    result = {**agreement.to_json(), "seconds": round(seconds, 3), "failures": failures}
    if failures:
        return saved_model.predict, "failed verification: " + "; ".join(failures), result
    return predict, None, result


def _summary(result: dict[str, Any] | None) -> str:
    if result is None:
        return "no figures"
    return (f"top-1 agreement {result['top1_agreement']:.2%}, accuracy {result['candidate_accuracy']:.2%} "
            f"against {result['reference_accuracy']:.2%}, ECE {result['candidate_ece']:.4f} against "
            f"{result['reference_ece']:.4f}, {result['seconds']:.1f} s")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
