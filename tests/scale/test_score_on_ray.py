"""`python -m service.score --ray` on a real two-node loopback cluster: the local run's output, row for row,
every row exactly once when an interrupted job is resumed (only the ranges left scored again), and when
the worker node is killed while it scores.

Both "nodes" share this machine's filesystem, which stands for the shared storage a real cluster
needs: the model and the output folder are plain paths here, and so is the input but for the image
folder, which every actor reads from an S3-compatible server on 127.0.0.1 (moto's) by its URI.
The worker-node test kills a node of the module's cluster, so it comes last.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from service.score.checkpoint import MANIFEST
from tests.scale.cluster import HEAD_IP, REPO, WORKER_IP, Cluster, two_node_cluster
from tests.service.score.conftest import Bucket, read_rows, s3_environment, s3_server, write_texts
from tests.tiny_models import build_image_model, build_text_model, expected_positive

PROBABILITIES = {"probability", "probability_negative", "probability_positive", "probability_red",
                 "probability_green", "probability_blue"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("logs")
    # Short: Ray's socket paths under its temp folder must fit in 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
    try:
        with two_node_cluster(temp_dir, logs) as running:
            yield running
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("artifacts")
    build_text_model(root / "tiny-text" / "1")
    build_image_model(root / "tiny-image" / "1")
    return root


def score(cluster: Cluster | None, artifacts: Path, *arguments: object,
          environment: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The command, locally (`cluster` None) or on the cluster, in a process of its own (whose `environment`
    adds to the cluster's)."""
    env = (cluster.env if cluster else dict(os.environ)) | {"SERVICE_ARTIFACTS_DIR": str(artifacts),
                                                           "PYTHONPATH": str(REPO)} | (environment or {})
    command = [sys.executable, "-m", "service.score", *map(str, arguments)]
    if cluster is not None:
        command += ["--ray", cluster.address, "--ray-node-ip", HEAD_IP]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> str:
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    return stderr


def shards(folder: Path, extension: str = ".parquet") -> list[dict]:
    """Every row of an output folder's shards (each read alone), in the order of their names."""
    files = sorted(folder.glob("part-*"))
    assert files and all(path.suffix == extension for path in files), files
    assert sorted(path.name for path in folder.iterdir()) == [MANIFEST, *(path.name for path in files)]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["finished"] is True and manifest["sharded"] is True
    return [row for path in files for row in read_rows(path)]


def assert_same_rows(local: list[dict], on_ray: list[dict]) -> None:
    assert len(on_ray) == len(local)
    for mine, theirs in zip(on_ray, local, strict=True):
        assert list(mine) == list(theirs)  # the same columns, in the same order
        assert {k: v for k, v in mine.items() if k not in PROBABILITIES} == \
            {k: v for k, v in theirs.items() if k not in PROBABILITIES}
        for name in PROBABILITIES & mine.keys():
            if theirs[name] is None:
                assert mine[name] is None, (mine, theirs)
            else:
                assert mine[name] == pytest.approx(theirs[name], abs=1e-5), (mine, theirs)


def test_a_text_file_scored_on_ray_equals_the_local_run_row_for_row(cluster: Cluster, artifacts: Path,
                                                                   tmp_path: Path) -> None:
    texts = ["good", "bad bad", "good\ngood, \"bad\"", "", "boom", "  ", "good " * 5, "naïve good", "bad good"]
    # One "slow" text (about a second) in each range holds the first actor ready long enough for the
    # other node's actor to load its model and take ranges too.
    records = [{"id": f"r{i}", "text": "slow" if i % 128 == 5 else texts[i % len(texts)], "other": i}
               for i in range(1500)]
    errors = sum(record["text"] in ("", "  ", "boom") for record in records) + 1  # and the short row
    source = write_texts(tmp_path / "in.csv", records)
    with open(source, "a", encoding="utf-8") as handle:
        handle.write("r-short\n")  # a row with too few fields: a bad row, not a stopped job
    flags = ["--id-column", "id", "--part-rows", "128"]  # 12 ranges, shared by both nodes' actors
    local = score(None, artifacts, "tiny-text", source, "--output", tmp_path / "local.parquet", *flags)
    on_ray = score(cluster, artifacts, "tiny-text", source, "--output", tmp_path / "ray.parquet", *flags)
    finished(local)
    last_line = finished(on_ray).strip().splitlines()[-1]
    assert f"scored 1,501 rows ({errors} with an error) with tiny-text version 1 (newest)" in last_line
    per_node = last_line.split("rows scored per node: ")[1]
    assert f"{HEAD_IP} " in per_node and f"{WORKER_IP} " in per_node  # one model copy on each node
    rows = shards(tmp_path / "ray.parquet")
    assert_same_rows(read_rows(tmp_path / "local.parquet"), rows)
    assert [row["row"] for row in rows] == list(range(1501))
    assert rows[-1]["error"] == "row 1500: no 'text' value (the row has 1 fields, the header 3)"
    assert {(row["model"], row["version"]) for row in rows} == {("tiny-text", 1)}
    metadata = pq.read_schema(next((tmp_path / "ray.parquet").glob("part-*"))).metadata
    assert metadata[b"version_chosen"] == b"newest"
    assert pq.read_table(tmp_path / "ray.parquet").num_rows == 1501  # the manifest does not get in the way


def test_an_image_folder_scored_on_ray_equals_the_local_run_row_for_row(cluster: Cluster, artifacts: Path,
                                                                       tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for index in range(300):
        folder = photos / f"set{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG" if index % 2 else "JPEG")
        (folder / f"{index:04}.img").write_bytes(buffer.getvalue())
    (photos / "set0" / "broken.png").write_bytes(b"not an image")
    flags = ["--part-rows", "64", "--format", "parquet"]
    local = score(None, artifacts, "tiny-image", photos, "--output", tmp_path / "local.parquet", *flags)
    # On Ray, the same images from object storage: a prefix on an S3-compatible server on 127.0.0.1, which
    # each actor lists and reads. Only the driver has the AWS_* variables (the endpoint among them): the
    # nodes started without them, so an actor reaches the server only if the driver hands them on.
    with s3_server() as endpoint:
        bucket = Bucket("photos", endpoint)
        bucket.filesystem().create_dir(bucket.name)
        started = time.monotonic()
        uri = bucket.upload(photos, "photos")
        print(f"uploaded 301 images in {time.monotonic() - started:.1f} s")
        assert not any(name.startswith("AWS_ENDPOINT") for name in cluster.env)
        on_ray = score(cluster, artifacts, "tiny-image", uri, "--output", tmp_path / "ray-out", *flags,
                       environment=s3_environment(endpoint, tmp_path))
        assert "scored 301 rows (1 with an error)" in finished(on_ray)
    finished(local)
    rows = shards(tmp_path / "ray-out")
    assert_same_rows(read_rows(tmp_path / "local.parquet"), rows)
    assert [row["path"] for row in rows if row["error"]] == ["set0/broken.png"]
    assert json.loads((tmp_path / "ray-out" / MANIFEST).read_text())["input"]["path"] == uri


def test_a_missing_column_is_refused_before_the_cluster_is_used(cluster: Cluster, artifacts: Path,
                                                               tmp_path: Path) -> None:
    source = write_texts(tmp_path / "in.csv", [{"review": "good"}])
    process = score(cluster, artifacts, "tiny-text", source, "--output", tmp_path / "out.csv")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "has no column 'text' (--text-column); its header has: 'review'" in stderr
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.partial").exists()


def test_an_interrupted_job_resumed_scores_only_the_ranges_left_and_writes_every_row_once(
        cluster: Cluster, artifacts: Path, tmp_path: Path) -> None:
    ranges, part_rows = 8, 64
    # One "slow" text (about a second) in each range: the job runs long enough to be interrupted midway.
    texts = ["slow" if i % part_rows == 3 else ("good " * (i % 3) + "bad " * (i % 2)).strip() or "bad"
             for i in range(ranges * part_rows)]
    source = write_texts(tmp_path / "in.csv", [{"id": f"r{i}", "text": text} for i, text in enumerate(texts)])
    job = ["tiny-text", source, "--id-column", "id", "--part-rows", part_rows, "--output", tmp_path / "out.csv"]
    local = score(None, artifacts, *job[:-1], tmp_path / "local.csv")
    partial = tmp_path / "out.csv.partial"
    process = score(cluster, artifacts, *job)
    deadline = time.monotonic() + 180
    try:
        while len(list(partial.glob("part-*.csv"))) < 2:
            assert process.poll() is None and time.monotonic() < deadline, "the job ended before it was interrupted"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C; also when the wait failed, to free the cluster
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "the same command with --resume continues" in stderr
    time.sleep(3)  # the stopped job's actors go with its driver; one may commit the range it was writing
    written = len(list(partial.glob("part-*.csv")))
    assert 2 <= written < ranges and not (tmp_path / "out.csv").exists()

    resumed = score(cluster, artifacts, *job, "--resume")
    last_line = finished(resumed).strip().splitlines()[-1]
    finished(local)
    print(f"interrupted with {written} of {ranges} shards written; the resumed job's last line: {last_line}")
    left = (ranges - written) * part_rows
    assert f"scored {left:,} rows (0 with an error, continuing: {written} of {ranges} ranges were already written)" \
        in last_line
    per_node = last_line.split("rows scored per node: ")[1]
    assert sum(int(count.replace(",", "")) for count in re.findall(r"127\.0\.0\.\d+ ([\d,]+)", per_node)) == left
    rows = shards(tmp_path / "out.csv", ".csv")  # CSV shards, each with its header
    assert [row["row"] for row in rows] == list(range(len(texts)))  # every row once, in the shards' name order
    assert_same_rows(read_rows(tmp_path / "local.csv"), rows)


def test_when_the_worker_node_is_killed_while_it_scores_every_row_is_written_exactly_once(
        cluster: Cluster, artifacts: Path, tmp_path: Path) -> None:
    # "slow" makes the tiny model's call take about a second more: one in each range keeps the job
    # running long after the worker's first range, whatever the machine's speed.
    part_rows = 256
    texts = ["slow" if i % part_rows == 7 else ("good " * (i % 4) + "bad " * (i % 3)).strip() or "good"
             for i in range(40 * part_rows)]
    source = write_texts(tmp_path / "in.jsonl", [{"id": i, "text": text} for i, text in enumerate(texts)])
    process = score(cluster, artifacts, "tiny-text", source, "--output", tmp_path / "out.parquet",
                    "--id-column", "id", "--part-rows", part_rows, "--actors", 2)
    assert process.stderr is not None
    lines: list[str] = []
    worker_scoring = threading.Event()

    def watch() -> None:  # the driver's progress lines: rows scored per node, as the tally counts them
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("rows scored per node:") and f"{WORKER_IP} " in line:
                worker_scoring.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert worker_scoring.wait(180), "".join(lines)
    worker = next(node for node in cluster.nodes if node.ip == WORKER_IP)
    assert process.poll() is None and not (tmp_path / "out.parquet").exists(), "the job ended before the kill"
    killed_after = max(i for i, line in enumerate(lines) if line.startswith("rows scored per node:"))
    for pid in worker.processes():  # the whole node at once, as a machine that loses power
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=300)
    watcher.join(timeout=10)
    stderr = "".join(lines)
    assert process.returncode == 0, stderr
    print(f"killed {WORKER_IP} after the line: {lines[killed_after].strip()}\nthe job's last line: {lines[-1].strip()}")
    assert f"{WORKER_IP} " in lines[killed_after]
    rows = shards(tmp_path / "out.parquet")
    assert [row["row"] for row in rows] == list(range(len(texts)))  # every row, once, none twice (names sort by row)
    assert [row["id"] for row in rows] == [str(i) for i in range(len(texts))]  # JSON ids as Parquet text, as locally
    assert [row["probability_positive"] for row in rows] == pytest.approx(
        [expected_positive(text, 1) for text in texts], abs=1e-5)
    assert all(row["error"] is None for row in rows)
