"""The runtime each version runs on: a faster one only where the CPU allows it and the version's sample
verifies it, float32 otherwise, with the reason in the log, GET /models/{name} and /metrics.

The tests that need the CPU's bf16 say so: elsewhere neither OpenVINO nor oneDNN computes in bf16. On
such a CPU `auto` prefers OpenVINO (`openvino-bf16`), then TensorFlow's bf16 (`tensorflow-bf16`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from contract.savedmodel import SavedModel, load_model
from contract.verification import read_sample
from service.app import create_app
from service.core import runtimes
from service.core.runtimes import FLOAT32, Candidate, choose_runtime, cpu_bf16_flags
from service.core.workers import tensorflow_threads
from service.measure_runtimes import explanation_differences, measure
from service.settings import Settings
from service.shims.tensorflow_call_options import with_options
from tests.service.conftest import serving
from tests.tiny_models import (
    add_verification_sample,
    build_conv_image_model,
    build_text_model,
    colour_images,
)

needs_bf16 = pytest.mark.skipif(not cpu_bf16_flags(), reason="this CPU has no bf16: nothing for oneDNN to rewrite")
FIRST = "openvino-bf16"  # auto's first choice where the CPU has bf16
SAMPLE_SIZE = 400


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conv-image v1 with a sample of its own outputs; perturbed v1 whose reference has 5% of its rows moved
    to another class; unverified v1 with no sample; tiny-text v1 (no convolution) with a sample."""
    root = tmp_path_factory.mktemp("artifacts")
    images, labels = colour_images(SAMPLE_SIZE)
    add_verification_sample(build_conv_image_model(root / "conv-image" / "1"), images, labels)
    add_verification_sample(build_conv_image_model(root / "perturbed" / "1"), images, labels, perturb=0.05)
    build_conv_image_model(root / "unverified" / "1")
    texts = [" ".join(["good"] * (i % 3) + ["bad"] * (i % 2) + ["film"]) for i in range(60)]
    add_verification_sample(build_text_model(root / "tiny-text" / "1"), texts, np.array([i % 2 for i in range(60)]))
    return root


def _settings(root: Path, **values: object) -> Settings:
    return Settings(artifacts_dir=root, default_sentiment_model="tiny-text", reload_interval_s=0,
                    **{"runtime": "auto", **values})  # type: ignore[arg-type]


def _model(root: Path, name: str) -> SavedModel:
    return load_model(root / name / "1")


@needs_bf16
def test_auto_serves_a_version_that_verifies_on_openvino_bf16_and_its_answers_are_bf16s_within_tolerance(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service")
    images, _ = colour_images(16, seed=7)
    float32 = _model(root, "conv-image").predict(images)
    request = {"inputs": [{"name": "images", "datatype": "UINT8", "shape": list(images.shape),
                           "data": images.ravel().tolist()}]}
    with TestClient(create_app(_settings(root))) as client:
        described = client.get("/models/conv-image").json()["versions"][0]["runtime"]
        answer = client.post("/v2/models/conv-image/infer", json=request).json()
        metrics = client.get("/metrics").text
    served = np.array(answer["outputs"][0]["data"], dtype=np.float32).reshape(float32.shape)

    assert described["name"] == FIRST
    assert described["reason"] == f"passed verification on the card's sample of {SAMPLE_SIZE} inputs"
    assert list(described["verification"]) == [FIRST]  # the first candidate verified: no other was run
    figures = described["verification"][FIRST]
    assert figures["failures"] == [] and figures["count"] == SAMPLE_SIZE and figures["top1_agreement"] >= 0.995
    assert 0 < figures["max_abs_difference"] < 0.02
    # Served in bf16: rounded away from float32's answers, by no more than bf16 rounds, with the same classes.
    assert 0 < np.abs(served - float32).max() < 0.02
    assert (served.argmax(axis=1) == float32.argmax(axis=1)).all()
    assert f'service_model_runtime_info{{model="conv-image",runtime="{FIRST}",version="1"}} 1.0' in metrics
    assert 'service_model_runtime_info{model="unverified",runtime="tensorflow",version="1"} 1.0' in metrics
    assert any(record.getMessage().startswith(f"conv-image version 1 runs on {FIRST}: passed verification")
               for record in caplog.records)


@needs_bf16
async def test_a_new_version_hot_reloads_on_its_own_runtime_and_the_old_ones_info_goes(
    root: Path, tmp_path: Path
) -> None:
    # v1 verifies and runs on OpenVINO; v2's reference is perturbed, so it comes in on float32, and v1's series goes.
    images, labels = colour_images(SAMPLE_SIZE)
    folder = tmp_path / "artifacts"
    add_verification_sample(build_conv_image_model(folder / "conv-image" / "1"), images, labels)
    app = create_app(_settings(folder, model_versions=1))
    registry = app.state.registry
    async with serving(app) as http:
        before = (await http.get("/models/conv-image")).json()["versions"]
        staged = add_verification_sample(build_conv_image_model(tmp_path / "staging" / "conv-image" / "2"),
                                         images, labels, perturb=0.05)
        os.rename(staged, folder / "conv-image" / "2")
        await registry.refresh()  # sees version 2 for the first time
        await registry.refresh()  # unchanged since: loads it, and retires version 1
        after = (await http.get("/models/conv-image")).json()["versions"]
        answer = await http.post("/classify-image", content=_png(images[0]), headers={"Content-Type": "image/png"})
        metrics = (await http.get("/metrics")).text
    assert [(v["version"], v["runtime"]["name"]) for v in before] == [(1, FIRST)]
    assert [(v["version"], v["state"], (v["runtime"] or {}).get("name")) for v in after] == [
        (1, "available", None), (2, "serving", "tensorflow")]
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "2"
    assert 'service_model_runtime_info{model="conv-image",runtime="tensorflow",version="2"} 1.0' in metrics
    assert 'version="1"' not in "".join(line for line in metrics.splitlines() if "runtime_info{" in line)


@needs_bf16
async def test_concurrent_requests_to_a_bf16_version_share_one_model_call(root: Path) -> None:
    images, _ = colour_images(4, seed=5)
    float32 = _model(root, "conv-image").predict(images)
    app = create_app(_settings(root, max_batch_delay_ms=200))  # long enough for all four to join one batch
    async with serving(app) as http:
        responses = await asyncio.gather(*(
            http.post("/v2/models/conv-image/infer", json={"inputs": [
                {"name": "images", "datatype": "UINT8", "shape": [1, *image.shape], "data": image.ravel().tolist()}]})
            for image in images))
    assert [r.headers["x-batch-size"] for r in responses] == ["4"] * 4
    served = np.array([r.json()["outputs"][0]["data"] for r in responses], dtype=np.float32)
    assert 0 < np.abs(served - float32).max() < 0.02  # bf16's answers, each to its own caller
    assert (served.argmax(axis=1) == float32.argmax(axis=1)).all()


def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@needs_bf16
def test_a_reference_the_fast_runtime_disagrees_with_keeps_the_version_in_float32(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _model(root, "perturbed")
    predict, runtime = choose_runtime(model, _settings(root))
    assert runtime.name == "tensorflow"
    # Each candidate in turn: run on the sample, refused, logged.
    refused = [f"{name}: failed verification: top-1 agreement 95.00% < 99.5%" for name in runtime.verification]
    assert list(runtime.verification) == ["openvino-bf16", "tensorflow-bf16"]
    assert runtime.reason.startswith(f"float32, since {refused[0]}") and f"; {refused[1]}" in runtime.reason
    assert all(figures["failures"] for figures in runtime.verification.values())
    images, _ = colour_images(8)
    np.testing.assert_array_equal(predict(images), model.predict(images))  # float32's answers, exactly
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(";")[0] for w in warnings] == [
        f"perturbed version 1: {text.replace(': ', ' refused: ', 1)}" for text in refused]


def test_a_runtime_that_fails_to_build_its_function_falls_back_to_float32_and_logs(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A runtime whose calls TensorFlow cannot instantiate: call options carrying a config that is not a
    # ConfigProto fail in TensorFlow itself, at the first call, as a broken compile step would.
    from tensorflow.python.eager import context

    def broken(saved_model: SavedModel) -> runtimes.Predict:
        return with_options(saved_model.predict, context.FunctionCallOptions(config_proto="not a ConfigProto"))

    monkeypatch.setitem(runtimes.CANDIDATES, "tensorflow-bf16", Candidate("tensorflow-bf16", lambda *_: None, broken))
    model = _model(root, "conv-image")
    predict, runtime = choose_runtime(model, _settings(root, runtime="tensorflow-bf16"))
    assert runtime.name == "tensorflow"
    assert runtime.reason.startswith("float32, since tensorflow-bf16: failed to run (")
    assert runtime.verification == {}
    images, _ = colour_images(8)
    np.testing.assert_array_equal(predict(images), model.predict(images))
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"conv-image version 1: tensorflow-bf16 refused: {runtime.reason.split(': ', 1)[1]}"
    ]


@needs_bf16
def test_an_openvino_that_fails_to_compile_falls_back_to_the_next_runtime_and_logs(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import openvino

    def unknown_device(saved_model: SavedModel) -> runtimes.Predict:  # OpenVINO's own error, at compile time
        core = openvino.Core()
        return core.compile_model(core.read_model(str(saved_model.path)), "NO-SUCH-DEVICE")  # type: ignore[no-any-return]

    monkeypatch.setitem(runtimes.CANDIDATES, FIRST, Candidate(FIRST, lambda *_: None, unknown_device))
    _, runtime = choose_runtime(_model(root, "conv-image"), _settings(root))
    assert runtime.name == "tensorflow-bf16"
    assert list(runtime.verification) == ["tensorflow-bf16"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"conv-image version 1: {FIRST} refused: failed to run (RuntimeError: ")


@needs_bf16
def test_without_the_openvino_package_auto_takes_tensorflows_bf16(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # how Python marks a package that cannot be imported
    images, _ = colour_images(8)
    model = _model(root, "conv-image")
    predict, runtime = choose_runtime(model, _settings(root))
    assert runtime.name == "tensorflow-bf16"
    assert list(runtime.verification) == ["tensorflow-bf16"]
    assert 0 < np.abs(predict(images) - model.predict(images)).max() < 0.02


@needs_bf16
def test_openvino_never_starts_its_telemetry(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenVINO's tools (the model converter) report usage unless a consent file says no; the runtime reads the
    # SavedModel with the core alone, so no telemetry object is ever made, whatever that file says.
    from openvino_telemetry.main import Telemetry

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("OpenVINO's telemetry was started")

    monkeypatch.setattr(Telemetry, "init", refuse)
    predict = runtimes.CANDIDATES[FIRST].build(_model(root, "conv-image"))
    assert predict(colour_images(2)[0]).shape == (2, 3)


@pytest.mark.parametrize(("workers", "threads"), [(1, 2), (2, 1)])
def test_openvino_runs_on_this_process_share_of_the_cores(monkeypatch: pytest.MonkeyPatch, workers: int,
                                                          threads: int) -> None:
    # As python -m service sizes each worker process's pools on 2 cores (service.core.workers).
    for variable, value in tensorflow_threads(2, workers).items():
        monkeypatch.setenv(variable, value)
    assert runtimes.openvino_config()["INFERENCE_NUM_THREADS"] == threads
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS")
    assert "INFERENCE_NUM_THREADS" not in runtimes.openvino_config()  # OpenVINO's own count: every core


@needs_bf16
def test_openvino_answers_each_calling_thread_with_its_own_rows(root: Path) -> None:
    # The model executor may run calls on several threads: each gets an infer request of its own.
    model = _model(root, "conv-image")
    predict = runtimes.CANDIDATES[FIRST].build(model)
    batches = [colour_images(8 + i, seed=i)[0] for i in range(4)]
    answers: dict[int, np.ndarray] = {}

    def call(index: int) -> None:
        for _ in range(20):
            answers[index] = predict(batches[index])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, batch in enumerate(batches):
        assert answers[index].shape == (len(batch), 3)
        assert np.abs(answers[index] - model.predict(batch)).max() < 0.02


def test_with_bf16_forced_off_auto_serves_float32_without_trying_it(root: Path) -> None:
    model = _model(root, "conv-image")
    predict, runtime = choose_runtime(model, _settings(root, cpu_bf16="off"))
    assert (runtime.name, runtime.reason, runtime.verification) == (
        "tensorflow", "float32, since openvino-bf16: SERVICE_CPU_BF16=off; tensorflow-bf16: SERVICE_CPU_BF16=off", {})
    images, _ = colour_images(8)
    np.testing.assert_array_equal(predict(images), model.predict(images))


@needs_bf16
def test_a_version_without_a_sample_is_served_in_float32_as_not_verified(root: Path) -> None:
    _, runtime = choose_runtime(_model(root, "unverified"), _settings(root))
    assert (runtime.name, runtime.reason) == ("tensorflow", f"float32, since {FIRST}: not verified: no sample")


@needs_bf16
def test_a_sample_that_does_not_match_its_card_costs_only_the_faster_runtime(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    version_dir = shutil.copytree(root / "conv-image" / "1", tmp_path / "conv-image" / "1")
    (version_dir / "verification.npz").write_bytes(b"not the sample the card's sha256 names")
    model = load_model(version_dir)
    predict, runtime = choose_runtime(model, _settings(root))
    assert runtime.name == "tensorflow"
    assert runtime.reason.startswith(f"float32, since {FIRST}: not verified: the sample cannot be read (")
    assert "verification.npz has sha256" in runtime.reason
    images, _ = colour_images(4)
    np.testing.assert_array_equal(predict(images), model.predict(images))
    assert any(r.levelno == logging.WARNING and "verification.npz has sha256" in r.getMessage() for r in caplog.records)


@needs_bf16
def test_a_text_model_stays_float32_without_running_its_sample(root: Path) -> None:
    # Like the committed LSTMs, which OpenVINO cannot read (their tokenizer is in the graph) and TensorFlow's
    # bf16 slows down: the tiny text model tokenizes strings and has no convolution.
    _, runtime = choose_runtime(_model(root, "tiny-text"), _settings(root))
    assert (runtime.name, runtime.reason, runtime.verification) == (
        "tensorflow", "float32, since openvino-bf16: OpenVINO cannot run a graph that tokenizes strings; "
        "tensorflow-bf16: no convolution in the graph (without one, bf16 was measured slower)", {})


@pytest.mark.parametrize("setting", ["tensorflow", "tensorflow-bf16", "openvino-bf16"])
def test_a_named_runtime_is_the_only_one_tried(root: Path, setting: str) -> None:
    _, runtime = choose_runtime(_model(root, "conv-image"), _settings(root, runtime=setting, cpu_bf16="off"))
    expected = {"tensorflow": "SERVICE_RUNTIME=tensorflow",
                "tensorflow-bf16": "float32, since tensorflow-bf16: SERVICE_CPU_BF16=off",
                "openvino-bf16": "float32, since openvino-bf16: SERVICE_CPU_BF16=off"}
    assert (runtime.name, runtime.reason) == ("tensorflow", expected[setting])


@pytest.mark.parametrize(("flags", "found"), [
    ("fpu sse2 avx512f avx512_bf16 avx512_vnni", ("avx512_bf16",)),
    ("fpu sse2 avx512f amx_bf16 amx_tile avx512_bf16", ("avx512_bf16", "amx_bf16")),
    ("fpu sse2 avx2 avx512f avx512_vnni", ()),
])
def test_the_cpu_check_reads_the_flags_line(tmp_path: Path, flags: str, found: tuple[str, ...]) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: a CPU with avx512_bf16 in its name\nflags\t\t: {flags}\n\n")
    assert cpu_bf16_flags(cpuinfo) == found
    assert cpu_bf16_flags(tmp_path / "missing") == ()


def test_make_settings_keeps_other_tests_in_float32(make_settings: Callable[..., Settings]) -> None:
    assert make_settings().runtime == "tensorflow"  # tests/conftest.py: exact answers outside this file


@needs_bf16
def test_offline_scoring_runs_a_version_on_the_runtime_the_service_would(root: Path) -> None:
    from service.core.handlers import EncodedImage
    from service.score.scorer import BatchScorer

    images, _ = colour_images(4, seed=3)
    scorer = BatchScorer(root / "conv-image" / "1", _settings(root), warm_up_rows=2)
    prepared = scorer.prepare([EncodedImage(_png(image), f"{i}.png") for i, image in enumerate(images)])
    scored = scorer.predict(prepared).probabilities
    float32 = _model(root, "conv-image").predict(images)
    assert scorer.runtime.name == FIRST
    assert scored is not None and 0 < np.abs(scored - float32).max() < 0.02


@needs_bf16
def test_measure_runtimes_compares_each_runtimes_explanations_with_float32s(root: Path) -> None:
    model = _model(root, "conv-image")
    sample = read_sample(model.path, model.card)
    assert sample is not None
    predicts = {FLOAT32: model.predict} | {name: c.build(model) for name, c in runtimes.CANDIDATES.items()}
    found = explanation_differences(model, sample, predicts, count=6)
    assert found["inputs"] == 6 and found["largest_float32_weight"] > 0
    for name in runtimes.CANDIDATES:
        bf16 = found["vs_float32"][name]
        # bf16 rounds the conv model's learned term: its weights differ from float32's, a little.
        assert 0 < bf16["mean_abs_difference"] <= bf16["max_abs_difference"] < 0.1, name
        assert 0 <= bf16["same_top_part"] <= 1
    texts = _model(root, "tiny-text")
    text_sample = read_sample(texts.path, texts.card)
    assert text_sample is not None
    same = explanation_differences(texts, text_sample, {FLOAT32: texts.predict, "again": texts.predict}, count=5)
    assert same["vs_float32"]["again"] == {"mean_abs_difference": 0.0, "max_abs_difference": 0.0, "same_top_part": 1.0}


@needs_bf16
def test_measure_runtimes_times_the_runtimes_asked_for_on_the_inputs_given(root: Path) -> None:
    # What `make bench --runtimes` asks for: auto's choice (under its own name) and float32, at two batch
    # sizes, on the benchmark's own inputs rather than the sample.
    images, _ = colour_images(64, seed=1)
    found = measure(root / "conv-image" / "1", [32, 16], rounds=2, seconds=0.05, runtimes=["auto", FLOAT32],
                    inputs=images)
    assert found["chosen"]["name"] == FIRST
    keys = [f"{FIRST}@32", f"{FLOAT32}@32", f"{FIRST}@16", f"{FLOAT32}@16"]
    assert list(found["items_per_second"]) == keys and all(found["items_per_second"][key] > 0 for key in keys)
    assert all(len(found["rounds"][key]) == 2 for key in keys)
    assert found["vs_float32"][f"{FLOAT32}@16"] == 1.0
    with pytest.raises(SystemExit, match="unknown runtime"):
        measure(root / "conv-image" / "1", [16], rounds=1, seconds=0.05, runtimes=["openvino"], inputs=images)
