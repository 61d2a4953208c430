"""python -m service.measure_openvino VERSION_DIR: OpenVINO on an image version, float32, bf16 and int8,
against the service's own runtimes. A measurement of candidates, not a runtime the service uses.

OpenVINO and NNCF are not dependencies of the project (docs/runtimes.md says why); install them
beside it to run this, for example in a virtual environment that also sees the project's packages:

    python -m venv /tmp/ovenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/ovenv/lib/python3.11/site-packages/project.pth
    /tmp/ovenv/bin/pip install openvino==2026.4.1 nncf==3.4.0
    /tmp/ovenv/bin/opt_in_out --opt_out        # OpenVINO's telemetry off (a consent file holding 0)
    /tmp/ovenv/bin/python -m service.measure_openvino artifacts/cifar10-cnn/4

OpenVINO reads the SavedModel folder itself. The int8 model is NNCF's post-training quantization,
calibrated on CIFAR-10 *training* images (`--calibration` of them, taken evenly from each class of
the image-folder zip's train split, decoded as the service decodes), never on the verification
sample, which is test data and what every runtime is then judged on: top-1 agreement, accuracy
and ECE against the sample's float32 reference (`Agreement.failures`, the service's criteria).
Then items/s at batch 64 on the sample's first eight batches, every runtime once per round, the
order reversed every other round; the median and spread of each runtime's ratio to TensorFlow
float32 within the rounds.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from contract.pixels import model_pixels
from contract.savedmodel import load_model
from contract.speed import machine_description, measure_throughput
from contract.verification import read_sample
from service.core.runtimes import CANDIDATES, FLOAT32

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


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


def openvino_predict(core: Any, model: Any, precision: str) -> Callable[[np.ndarray], np.ndarray]:
    """One synchronous request on all cores (the latency hint), as the service's one model thread would use it."""
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})
    request, output = compiled.create_infer_request(), compiled.outputs[0]
    return lambda batch: request.infer([np.asarray(batch)])[output].copy()


def main() -> None:
    import nncf
    import openvino

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", type=Path, help="an image version folder with a verification sample")
    parser.add_argument("--dataset", type=Path, default=DATASETS / "cifar10-jpeg.zip",
                        help="an image-folder zip whose train split calibrates int8")
    parser.add_argument("--calibration", type=int, default=300, help="training images for int8's calibration")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per runtime per round")
    args = parser.parse_args()
    print(f"# {machine_description()}, OpenVINO {openvino.__version__}, NNCF {nncf.__version__}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    model = load_model(args.version)
    sample = read_sample(args.version, model.card)
    if sample is None:
        raise SystemExit(f"{args.version}: no verification sample to judge the runtimes on")
    height, width = model.card.input.height, model.card.input.width  # type: ignore[attr-defined]
    core = openvino.Core()
    converted = core.read_model(str(args.version))
    calibration = calibration_images(args.dataset, args.calibration, height, width)
    started = time.perf_counter()
    quantized = nncf.quantize(converted, nncf.Dataset([image[None] for image in calibration]),
                              subset_size=len(calibration))
    print(f"# int8: {len(calibration)} training images, quantized in {time.perf_counter() - started:.1f} s")

    predicts = {
        FLOAT32: model.predict,
        "tensorflow-bf16": CANDIDATES["tensorflow-bf16"].build(model),
        "openvino f32": openvino_predict(core, converted, "f32"),
        "openvino bf16": openvino_predict(core, converted, "bf16"),
        "openvino int8": openvino_predict(core, quantized, "f32"),
        "openvino int8, bf16 elsewhere": openvino_predict(core, quantized, "bf16"),
    }
    for name, predict in predicts.items():
        agreement = sample.compare(np.concatenate([predict(batch) for batch in sample.batches(64)]))
        figures = agreement.to_json()
        print(f"{name}: top-1 agreement {figures['top1_agreement']:.2%}, accuracy {figures['candidate_accuracy']:.2%} "
              f"(float32 {figures['reference_accuracy']:.2%}), ECE {figures['candidate_ece']:.4f} "
              f"(float32 {figures['reference_ece']:.4f}); {'; '.join(agreement.failures()) or 'verifies'}", flush=True)

    batches = list(sample.batches(64))[:8]
    rates: dict[str, list[float]] = {name: [] for name in predicts}
    names = list(predicts)
    for turn in range(args.rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            rates[name].append(measure_throughput(predicts[name], batches, args.seconds))
    for name, values in rates.items():
        ratios = [value / base for value, base in zip(values, rates[FLOAT32], strict=True)]
        print(f"{name}: {statistics.median(values):.0f} images/s ({min(values):.0f}-{max(values):.0f}); "
              f"/ float32 {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
